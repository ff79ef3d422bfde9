"""The browser SDK in Debian's Chromium, against a real collector.

Test pages are served over http://127.0.0.1 by a static server started here, with the snippet
pasted exactly as sdk/README.md tells site owners; the SDK itself comes from the collector at
/sdk/v1/bond.js. What arrived is read from the collector's SQLite event log.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, WRITE_KEY, Collector, free_port, wait_until
from tests.signing_support import sign

SNIPPET = re.search(
    r"```html\n(<script>.*?</script>)\n```", (ROOT / "sdk" / "README.md").read_text(), re.S
)
assert SNIPPET, "sdk/README.md must show the snippet in an html block"

# Counts what the page hands to the network for the collector, so a test can tell that nothing
# was even attempted (not merely that nothing arrived yet).
COUNT_SENDS = """
window.__sends = [];
const fetch0 = window.fetch;
window.fetch = (url, init) =>
  (String(url).includes('/v1/batch') && __sends.push(init.body), fetch0(url, init));
const beacon0 = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, data) => (__sends.push(data), beacon0(url, data));
"""

Events = list[dict[str, Any]]


def snippet(host: str, **options: Any) -> str:
    """The README's snippet for `host`, with test options passed to init."""
    init = json.dumps({"host": host, "debug": True, **options})
    text = SNIPPET.group(1).replace("'https://bond.example.com'", json.dumps(host))
    return text.replace("YOUR_WRITE_KEY", WRITE_KEY).replace("{ host: host }", init)


class Site:
    """Static pages on a free port; POSTs (form submits) get the page too."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.csp: dict[str, str] = {}  # a page's Content-Security-Policy header, by its name
        csp = self.csp

        class Handler(SimpleHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.do_GET()

            def end_headers(self) -> None:
                if policy := csp.get(self.path.lstrip("/")):
                    self.send_header("Content-Security-Policy", policy)
                super().end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(
            ("127.0.0.1", self.port), functools.partial(Handler, directory=str(root))
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"

    def page(self, name: str, host: str, body: str = "", **options: Any) -> str:
        """Write a page with the snippet in its head; returns its URL."""
        head = f"<title>{name}</title>{snippet(host, **options)}"
        (self.root / name).write_text(
            f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
        )
        return f"{self.url}/{name}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    running = Site(tmp_path / "site")
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    ctx.add_init_script(COUNT_SENDS)
    yield ctx
    ctx.close()


class Tab:
    """A page and the SDK's debug log."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.logs: list[str] = []
        page.on("console", lambda m: self.logs.append(m.text))

    def wait_log(self, text: str) -> None:
        def seen() -> bool:
            # A round trip to the page lets Playwright deliver the console messages it holds.
            self.page.evaluate("0")
            return any(text in line for line in self.logs)

        wait_until(seen, what=f"console: {text}")

    def sends(self) -> int:
        return int(self.page.evaluate("__sends.length"))

    def bond_storage(self) -> dict[str, str]:
        items = self.page.evaluate("Object.entries(localStorage)")
        return {k: v for k, v in items if k.startswith("bond_")}

    def unsent(self) -> int:
        """Events in the SDK's stored queue (one localStorage key each)."""
        return sum(k.startswith("bond_e") for k in self.bond_storage())

    def cookie(self) -> str | None:
        found = re.search(r"(?:^|; )bond_id=([^;]*)", self.page.evaluate("document.cookie"))
        return found.group(1) if found else None


@pytest.fixture
def tab(context: BrowserContext) -> Tab:
    return Tab(context.new_page())


def stored(collector: Collector) -> Events:
    """Events in the collector's log, in arrival order."""
    db = sqlite3.connect(f"file:{collector.data_dir / 'events.db'}?mode=ro", uri=True)
    try:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM events ORDER BY seq")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def wait_stored(collector: Collector, check: Callable[[Events], bool], what: str) -> Events:
    """The stored events, once `check` holds for them."""

    def ready() -> Events | None:
        events = stored(collector)
        return events if check(events) else None

    result: Events = wait_until(ready, what=what)
    return result


def names(events: Events) -> list[str]:
    return [e.get("event") or e["type"] for e in events]


def test_stub_replays_calls_made_before_the_library_loads(
    collector: Collector, site: Site, tab: Tab
) -> None:
    early = "<script>bond.track('Early', {n: 1}); bond('identify', 'user-1', {plan: 'pro'});"
    early += " bond.track('Later');</script>"
    tab.page.goto(site.page("stub.html", collector.url, early))
    events = wait_stored(collector, lambda evs: len(evs) >= 4, "four events")
    assert names(events) == ["page", "Early", "identify", "Later"]
    assert events[1]["properties"] == {"n": 1}
    assert events[2]["userId"] == "user-1" and events[2]["traits"] == {"plan": "pro"}
    assert events[3]["userId"] == "user-1"
    assert {e["anonymousId"] for e in events} == {tab.cookie()}


def test_anonymous_id_survives_reloads_and_the_cookie_repairs_local_storage(
    collector: Collector, site: Site, context: BrowserContext, tab: Tab
) -> None:
    url = site.page("id.html", collector.url)
    tab.page.goto(url)
    first = wait_stored(collector, lambda evs: len(evs) == 1, "first page view")[0]
    anon = first["anonymousId"]
    assert tab.cookie() == anon
    assert tab.bond_storage()["bond_id"] == anon
    # localStorage drifts away from the cookie (another SDK, a cleared cookie jar...).
    tab.page.evaluate("localStorage.bond_id = '0b3a62a6-0000-4000-8000-000000000000'")
    tab.page.reload()
    Tab(context.new_page()).page.goto(url)
    events = wait_stored(collector, lambda evs: len(evs) == 3, "two more page views")
    assert {e["anonymousId"] for e in events} == {anon}
    assert tab.bond_storage()["bond_id"] == anon


def test_subdomains_share_the_anonymous_id(
    collector: Collector, site: Site, context: BrowserContext, tab: Tab
) -> None:
    site.page("sub.html", collector.url)
    tab.page.goto(f"http://www.shop.localhost:{site.port}/sub.html")
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view on www")
    Tab(context.new_page()).page.goto(f"http://checkout.shop.localhost:{site.port}/sub.html")
    events = wait_stored(collector, lambda evs: len(evs) == 2, "the page view on checkout")
    assert [e["context"]["page"]["url"].split(".")[0] for e in events] == [
        "http://www",
        "http://checkout",
    ]
    assert events[0]["anonymousId"] == events[1]["anonymousId"]
    cookies = context.cookies()
    assert [(c["name"], c["domain"]) for c in cookies] == [("bond_id", ".shop.localhost")]
    assert cookies[0]["sameSite"] == "Lax"


def test_a_submitted_email_form_identifies_without_reading_the_password(
    collector: Collector, site: Site, tab: Tab
) -> None:
    site.page("thanks.html", collector.url)
    form = (
        "<form method=post action=thanks.html><input type=email name=email>"
        "<input type=password name=password><input name=coupon><button>Buy</button></form>"
    )
    # A long interval: only the page leaving can carry the identify out.
    tab.page.goto(site.page("checkout.html", collector.url, form, flushInterval=600000))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    tab.page.fill("input[type=email]", "  Ann@Example.com ")
    tab.page.fill("input[type=password]", "hunter2-secret")
    tab.page.fill("input[name=coupon]", "COUPON-XYZ")
    tab.page.click("button")
    # Closing a context while a navigation commits can hang Chromium (Playwright #41900): let
    # the form's navigation finish before the test ends.
    tab.page.wait_for_url("**/thanks.html")
    tab.page.wait_for_load_state()
    events = wait_stored(collector, lambda evs: "identify" in names(evs), "the identify")
    identify = next(e for e in events if e["type"] == "identify")
    assert identify["traits"] == {"email": "Ann@Example.com"}
    assert "userId" not in identify
    everything = json.dumps(stored(collector))
    assert "hunter2" not in everything and "COUPON-XYZ" not in everything


def test_spa_navigation_records_page_views(collector: Collector, site: Site, tab: Tab) -> None:
    tab.page.goto(site.page("app.html", collector.url, flushInterval=50))
    wait_stored(collector, lambda evs: len(evs) == 1, "the first page view")
    tab.page.evaluate("history.pushState({}, '', '/app/cart')")
    tab.page.evaluate("history.replaceState({}, '', '/app/cart?step=2')")
    tab.page.evaluate("history.replaceState({step: 2}, '', '/app/cart?step=2')")
    tab.page.go_back()
    events = wait_stored(collector, lambda evs: len(evs) >= 4, "three more page views")
    assert [e["properties"]["path"] for e in events] == [
        "/app.html",
        "/app/cart",
        "/app/cart",
        "/app.html",
    ]
    assert events[2]["properties"]["search"] == "?step=2"
    assert names(events) == ["page"] * 4


def test_data_attribute_clicks_are_tracked(collector: Collector, site: Site, tab: Tab) -> None:
    body = (
        "<button data-bond-event='Plan Chosen' data-bond-prop-plan='pro'"
        " data-bond-prop-seat-count='3'><span id=inner>Go Pro</span></button><p id=plain>text</p>"
    )
    tab.page.goto(site.page("clicks.html", collector.url, body, flushInterval=50))
    tab.page.click("#plain")
    tab.page.click("#inner")
    events = wait_stored(collector, lambda evs: "Plan Chosen" in names(evs), "the click")
    assert names(events) == ["page", "Plan Chosen"]
    assert events[1]["properties"] == {"plan": "pro", "seat-count": "3"}


@pytest.mark.parametrize("leave", ["navigate away", "close the tab"])
def test_queued_events_leave_with_the_page(
    collector: Collector, site: Site, tab: Tab, leave: str
) -> None:
    tab.page.goto(site.page("leave.html", collector.url, flushInterval=600000, flushAt=100))
    # The page view leaves at once (init flushes what is queued); the rest waits for a timer
    # that would fire in ten minutes, so only the page leaving can carry it out.
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    tab.page.evaluate("bond.identify('user-7', {email: 'u7@example.com'}); bond.track('Paid')")
    if leave == "navigate away":
        tab.page.goto(f"{collector.url}/healthz")
    else:
        tab.page.close()
    events = wait_stored(collector, lambda evs: len(evs) == 3, "events sent on the way out")
    assert names(events) == ["page", "identify", "Paid"]


def test_what_leaves_by_beacon_into_a_collector_restart_is_sent_by_the_next_page(
    collector: Collector, site: Site, tab: Tab
) -> None:
    # A long interval: what is tracked after the page view leaves only by beacon, on unload.
    tab.page.goto(site.page("leaving.html", collector.url, flushAt=100, flushInterval=600_000))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    collector.stop()
    tab.page.evaluate("bond.track('Before leaving')")
    # A page of the same site without the snippet: the stored queue is readable, nothing sends.
    (site.root / "plain.html").write_text("<!doctype html><title>plain</title>")
    tab.page.goto(f"{site.url}/plain.html")
    assert tab.unsent() == 1, "nobody learns whether a beacon arrived, so its event stays queued"
    collector.start()
    tab.page.goto(site.page("back.html", collector.url, flushAt=1, flushInterval=50))
    events = wait_stored(collector, lambda evs: len(evs) == 3, "the beacon's event, sent again")
    assert names(events) == ["page", "Before leaving", "page"]
    wait_until(lambda: tab.unsent() == 0, what="the queue to empty")


def test_offline_then_online_loses_and_duplicates_nothing(
    collector: Collector, site: Site, context: BrowserContext, tab: Tab
) -> None:
    tab.page.goto(site.page("offline.html", collector.url, flushAt=1, flushInterval=50))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    context.set_offline(True)
    tab.page.wait_for_function("!navigator.onLine")
    tab.page.evaluate("for (let i = 0; i < 30; i++) bond.track('Offline ' + i)")
    assert tab.unsent() == 30
    context.set_offline(False)
    events = wait_stored(collector, lambda evs: len(evs) == 31, "the offline events")
    assert names(events)[1:] == [f"Offline {i}" for i in range(30)]
    sent = [
        m["messageId"] for body in tab.page.evaluate("__sends") for m in json.loads(body)["batch"]
    ]
    assert len(sent) == len(set(sent)) == 31, "each event was sent once"
    wait_until(lambda: tab.unsent() == 0, what="the queue to empty")


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        ("Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})", "DNT"),
        (
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
            "GPC",
        ),
    ],
)
def test_do_not_track_and_global_privacy_control_store_and_send_nothing(
    collector: Collector, site: Site, context: BrowserContext, signal: str, reason: str
) -> None:
    context.add_init_script(signal)
    tab = Tab(context.new_page())
    tab.page.clock.install()
    tab.page.goto(site.page("dnt.html", collector.url))
    tab.wait_log(f"skipped page: {reason}")
    tab.page.evaluate("bond.identify('user-1'); bond.track('Seen')")
    tab.page.clock.run_for(60000)
    tab.wait_log(f"skipped track: {reason}")
    assert tab.sends() == 0
    assert tab.cookie() is None and tab.bond_storage() == {}


def test_respect_dnt_false_tracks_despite_the_signal(
    collector: Collector, site: Site, context: BrowserContext
) -> None:
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    )
    Tab(context.new_page()).page.goto(site.page("nodnt.html", collector.url, respectDNT=False))
    wait_stored(collector, lambda evs: names(evs) == ["page"], "the page view")


def test_crawlers_are_not_tracked(collector: Collector, site: Site, browser: Browser) -> None:
    context = browser.new_context(user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
    try:
        context.add_init_script(COUNT_SENDS)
        tab = Tab(context.new_page())
        tab.page.goto(site.page("bot.html", collector.url))
        tab.wait_log("skipped page: bot")
        assert tab.cookie() is None and tab.bond_storage() == {}
    finally:
        context.close()


def test_opting_out_persists_until_opting_in(collector: Collector, site: Site, tab: Tab) -> None:
    url = site.page("optout.html", collector.url, flushInterval=50)
    tab.page.goto(url)
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view before opting out")
    tab.page.evaluate("bond.optOut(); bond.track('After opt-out')")
    tab.wait_log("skipped track: opted out")
    assert tab.cookie() is None
    tab.page.reload()
    tab.wait_log("skipped page: opted out")
    assert tab.cookie() is None and tab.bond_storage() == {"bond_optout": "1"}
    tab.page.evaluate("bond.optIn(); bond.track('Back')")
    events = wait_stored(collector, lambda evs: len(evs) == 2, "the event after opting in")
    assert names(events) == ["page", "Back"]
    assert events[0]["anonymousId"] != events[1]["anonymousId"], "opting out forgot the old id"


def test_require_consent_keeps_everything_in_memory_until_consent(
    collector: Collector, site: Site, tab: Tab
) -> None:
    url = site.page("consent.html", collector.url, requireConsent=True, flushInterval=50)
    tab.page.clock.install()
    tab.page.goto(url)
    tab.page.evaluate("bond.identify('user-9'); bond.track('Before consent')")
    tab.page.clock.run_for(60000)
    assert tab.sends() == 0
    assert tab.cookie() is None
    assert tab.page.evaluate("localStorage.length") == 0
    tab.page.evaluate("bond.consent()")
    events = wait_stored(collector, lambda evs: len(evs) == 3, "the events held for consent")
    assert names(events) == ["page", "identify", "Before consent"]
    assert tab.cookie() == events[0]["anonymousId"]
    # Consent is remembered: the next page sends without asking again.
    tab.page.reload()
    events = wait_stored(collector, lambda evs: len(evs) == 4, "the page view after reload")
    assert events[3]["anonymousId"] == events[0]["anonymousId"]
    assert events[3]["userId"] == "user-9"


def test_a_banner_passing_the_refusal_to_consent_sends_and_stores_nothing(
    collector: Collector, site: Site, tab: Tab
) -> None:
    url = site.page("declined.html", collector.url, requireConsent=True, flushInterval=50)
    tab.page.clock.install()
    tab.page.goto(url)
    tab.page.evaluate("bond.track('Before the answer'); bond.consent(false); bond.consent(0)")
    tab.page.evaluate("bond.track('After the refusal')")
    tab.page.clock.run_for(60000)
    assert tab.sends() == 0
    assert tab.cookie() is None
    assert tab.page.evaluate("localStorage.length") == 0
    # The refusal is not remembered as consent: the next page holds everything again.
    tab.page.reload()
    tab.page.clock.run_for(60000)
    assert tab.sends() == 0


class OverloadedCollector:
    """A tiny collector that serves the SDK, answers the first batch with 429 and Retry-After,
    then accepts; it remembers the messageIds of every batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        sdk = (
            ROOT
            / "sdk"
            / "dist"
            / json.loads((ROOT / "sdk/dist/manifest.json").read_text())["file"]
        ).read_bytes()
        batches = self.batches

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer(200, sdk, "text/javascript")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                batches.append([m["messageId"] for m in body["batch"]])
                if len(batches) == 1:
                    self.answer(429, b'{"error": "slow down"}', "application/json")
                else:
                    accepted = {"accepted": len(body["batch"]), "rejected": []}
                    self.answer(200, json.dumps(accepted).encode(), "application/json")

            def answer(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Retry-After", "30")
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Expose-Headers", "Retry-After")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def overloaded() -> Iterator[OverloadedCollector]:
    running = OverloadedCollector()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_429_waits_for_retry_after_then_delivers(
    site: Site, tab: Tab, overloaded: OverloadedCollector
) -> None:
    tab.page.clock.install()
    tab.page.goto(site.page("busy.html", overloaded.url, flushInterval=50))
    tab.wait_log("retry 1 429")
    assert 25000 < tab.page.evaluate("localStorage.bond_hold - Date.now()") <= 30000
    tab.page.clock.run_for(25000)
    assert tab.sends() == 1, "nothing is sent while Retry-After lasts"
    tab.page.clock.run_for(6000)
    wait_until(lambda: len(overloaded.batches) == 2, what="the retry")
    assert overloaded.batches[0] == overloaded.batches[1]
    wait_until(lambda: tab.unsent() == 0, what="the queue to empty")


def test_identify_group_alias_and_reset(collector: Collector, site: Site, tab: Tab) -> None:
    tab.page.goto(site.page("calls.html", collector.url, flushInterval=50))
    tab.page.evaluate("""
        bond.identify('undefined', {email: 'x@example.com'});
        bond.group('[object Object]');
        bond.track(' ');
        bond('trak', 'Mistyped');
        bond.identify('user-1', {email: 'null', plan: 'pro'}, {signature: 'c2lnbmVk'});
        bond.group('acme', {seats: 3});
        bond.alias('user-1-new');
        bond.reset();
        bond.track('After reset');
    """)
    tab.wait_log("skipped identify: placeholder userId")
    tab.wait_log("skipped group: placeholder groupId")
    tab.wait_log("skipped track: placeholder event")
    tab.wait_log("skipped trak: unknown")
    events = wait_stored(collector, lambda evs: len(evs) == 5, "the calls")
    page, identify, group, alias, after = events
    assert names(events) == ["page", "identify", "group", "alias", "After reset"]
    assert identify["userId"] == "user-1" and identify["traits"] == {"plan": "pro"}
    # The signature goes on the wire; the collector never stores it (context.bond is its own).
    sent = {
        m["messageId"]: m
        for body in tab.page.evaluate("__sends")
        for m in json.loads(body)["batch"]
    }
    assert sent[identify["messageId"]]["context"]["bond"] == {"signature": "c2lnbmVk"}
    assert "bond" not in identify["context"]
    assert group["groupId"] == "acme" and group["userId"] == "user-1"
    assert (alias["userId"], alias["previousId"]) == ("user-1-new", "user-1")
    assert len({page["anonymousId"], identify["anonymousId"], alias["anonymousId"]}) == 1
    assert "userId" not in after and after["anonymousId"] != page["anonymousId"]
    assert after["context"]["sessionId"] != page["context"]["sessionId"]
    assert tab.cookie() == after["anonymousId"]


def test_two_tabs_never_send_the_same_event(
    collector: Collector, site: Site, context: BrowserContext
) -> None:
    url = site.page("tabs.html", collector.url, flushAt=2, flushInterval=20)
    tabs = [Tab(context.new_page()) for _ in range(3)]
    for tab in tabs:
        tab.page.goto(url)
    for n in range(10):
        for i, tab in enumerate(tabs):
            tab.page.evaluate(f"bond.track('Tab {i} event {n}')")
    wait_stored(collector, lambda evs: len(evs) == 33, "every tab's events")
    sent = [
        m["messageId"]
        for tab in tabs
        for body in tab.page.evaluate("__sends")
        for m in json.loads(body)["batch"]
    ]
    assert len(sent) == len(set(sent)), "no event went out twice"


# What Chromium does when the visitor blocks site data for the site (a profile setting):
# reading window.localStorage throws.
BLOCK_STORAGE = """
Object.defineProperty(window, 'localStorage', {configurable: true, get() {
  throw new DOMException('Access is denied for this document.', 'SecurityError');
}});
"""

# The site's own data fills localStorage to its quota.
FILL_STORAGE = """() => {
  const big = 'x'.repeat(1 << 20);
  for (let i = 0, size = 1 << 20; size >= 1; i++) {
    try { localStorage.setItem('site_' + i, big.slice(0, size)); } catch (e) { size >>= 1; }
  }
}"""


def test_blocked_storage_keeps_the_page_in_memory_and_still_sends(
    collector: Collector, site: Site, context: BrowserContext
) -> None:
    context.add_init_script(BLOCK_STORAGE)
    tab = Tab(context.new_page())
    tab.page.goto(site.page("blocked.html", collector.url, flushInterval=50))
    tab.page.evaluate("bond.track('A'); bond.track('B')")
    events = wait_stored(collector, lambda evs: len(evs) == 3, "the events")
    assert names(events) == ["page", "A", "B"]
    assert {e["anonymousId"] for e in events} == {tab.cookie()}
    assert not [line for line in tab.logs if "Error" in line]


def test_full_storage_loses_neither_queued_nor_new_events(
    collector: Collector, site: Site, context: BrowserContext, tab: Tab
) -> None:
    tab.page.goto(site.page("full.html", collector.url, flushInterval=50))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    context.set_offline(True)
    tab.page.wait_for_function("!navigator.onLine")
    tab.page.evaluate("bond.track('Queued before the disk filled')")
    tab.page.evaluate(FILL_STORAGE)
    tab.page.evaluate("bond.track('Tracked on a full disk')")
    context.set_offline(False)
    events = wait_stored(collector, lambda evs: len(evs) == 3, "both events")
    assert names(events) == ["page", "Queued before the disk filled", "Tracked on a full disk"]
    wait_until(lambda: tab.unsent() == 0, what="the stored event to leave the queue")


def test_events_too_big_are_refused_or_dropped_with_their_reason_not_blocking_the_queue(
    collector: Collector, site: Site, tab: Tab
) -> None:
    tab.page.goto(site.page("huge.html", collector.url, flushInterval=50))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    # Over the collector's 32 KB, though a request can carry it; no request can carry 70 KB.
    tab.page.evaluate("""
        bond.track('Huge', {notes: 'x'.repeat(40000)});
        bond.track('Huger', {notes: 'x'.repeat(70000)});
        bond.track('After');
    """)
    events = wait_stored(collector, lambda evs: len(evs) == 2, "the event after the huge ones")
    assert names(events) == ["page", "After"]
    tab.wait_log("the limit is 32768")
    tab.wait_log("skipped track: over 60 KB")
    wait_until(lambda: tab.unsent() == 0, what="the queue to empty")


def test_an_event_too_big_for_any_request_is_dropped_and_the_rest_leaves_with_the_page(
    collector: Collector, site: Site, tab: Tab
) -> None:
    # A long interval: what is tracked after the page view leaves only by beacon, on unload;
    # Chromium refuses a beacon over 64 KB.
    tab.page.goto(site.page("bigger.html", collector.url, flushAt=100, flushInterval=600_000))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    tab.page.evaluate("bond.track('Huge', {notes: 'x'.repeat(70000)}); bond.track('Paid')")
    # A page of the same site without the snippet: the stored queue is readable, nothing sends.
    (site.root / "plain.html").write_text("<!doctype html><title>plain</title>")
    tab.page.goto(f"{site.url}/plain.html")
    events = wait_stored(collector, lambda evs: len(evs) == 2, "the event behind the huge one")
    assert names(events) == ["page", "Paid"]
    queued = [json.loads(v) for k, v in tab.bond_storage().items() if k.startswith("bond_e")]
    assert names(queued) == ["Paid"], "the huge one is dropped; what a beacon carried stays queued"


def test_consent_given_in_another_tab_applies_to_this_one(
    collector: Collector, site: Site, context: BrowserContext
) -> None:
    url = site.page("consent2.html", collector.url, requireConsent=True, flushInterval=50)
    first, second = Tab(context.new_page()), Tab(context.new_page())
    first.page.goto(url)
    first.page.evaluate("bond.track('Before consent')")
    second.page.goto(url)
    second.page.evaluate("bond.consent()")
    first.page.evaluate("bond.track('After consent elsewhere')")
    events = wait_stored(collector, lambda evs: len(evs) == 4, "both tabs' events")
    assert sorted(names(events)) == ["After consent elsewhere", "Before consent", "page", "page"]
    # Each tab made up an id in memory before consent; from now on both share the stored one.
    first.page.evaluate("bond.track('Later')")
    second.page.evaluate("bond.track('Later')")
    events = wait_stored(collector, lambda evs: len(evs) == 6, "the later events")
    assert len({e["anonymousId"] for e in events if e.get("event") == "Later"}) == 1


def test_coming_back_online_sends_at_once_despite_a_backoff(
    collector: Collector, site: Site, context: BrowserContext, tab: Tab
) -> None:
    tab.page.goto(site.page("back.html", collector.url, flushInterval=50))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    # Where a run of failed requests leaves the SDK: held back for a long backoff.
    tab.page.evaluate("localStorage.bond_hold = Date.now() + 3600e3")
    context.set_offline(True)
    tab.page.wait_for_function("!navigator.onLine")
    tab.page.evaluate("bond.track('Offline')")
    context.set_offline(False)
    events = wait_stored(collector, lambda evs: len(evs) == 2, "the offline event")
    assert names(events) == ["page", "Offline"]


def test_an_unsigned_identify_for_the_same_user_keeps_its_signature(
    site: Site, tab: Tab, tmp_path: Path
) -> None:
    secret = "sdk-signing-secret"
    signed = Collector(
        tmp_path / "signed",
        env={"BOND_SIGNING_SECRET": secret, "BOND_REQUIRE_SIGNED_IDENTIFY": "true"},
    ).start()
    try:
        tab.page.goto(site.page("signed.html", signed.url, flushInterval=50))
        tab.page.evaluate(
            "s => bond.identify('cust-1', {name: 'Kim'}, {signature: s})", sign("cust-1", secret)
        )
        # Later, a page updates the same user's traits without a signature.
        tab.page.evaluate("bond.identify('cust-1', {plan: 'pro'}); bond.track('Still signed')")
        # A different user without a signature must not borrow the first one's.
        tab.page.evaluate("bond.identify('cust-2'); bond.track('Someone else')")
        events = wait_stored(signed, lambda evs: len(evs) == 6, "the events")
    finally:
        signed.stop()
    assert names(events) == [
        "page",
        "identify",
        "identify",
        "Still signed",
        "identify",
        "Someone else",
    ]
    verified = [(e.get("userId"), (e["context"].get("bond") or {}).get("verified")) for e in events]
    assert verified[1:4] == [("cust-1", "user_id")] * 3
    # The collector refuses cust-2's claim (no signature) and keeps the events anonymous.
    assert verified[4:] == [(None, None)] * 2
    sent = [m for body in tab.page.evaluate("__sends") for m in json.loads(body)["batch"]]
    assert [m["context"].get("bond") for m in sent if m.get("userId") == "cust-2"] == [None, None]
    assert not tab.bond_storage().get("bond_us"), "cust-2 has no signature"


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        ("Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})", "DNT"),
        (
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
            "GPC",
        ),
    ],
)
def test_turning_on_dnt_or_gpc_after_a_visit_forgets_the_stored_ids(
    collector: Collector, site: Site, context: BrowserContext, signal: str, reason: str
) -> None:
    url = site.page("returning.html", collector.url, requireConsent=True, flushInterval=50)
    tab = Tab(context.new_page())
    tab.page.goto(url)
    tab.page.evaluate("bond.consent()")
    wait_stored(collector, lambda evs: names(evs) == ["page"], "the first visit's page view")
    assert tab.cookie() and {"bond_id", "bond_s", "bond_consent"} <= set(tab.bond_storage())
    tab.page.close()
    context.add_init_script(signal)  # the visitor turns the signal on
    tab = Tab(context.new_page())
    tab.page.goto(url)
    tab.wait_log(f"skipped page: {reason}")
    assert tab.cookie() is None
    # The ids go; the visitor's consent stays.
    assert tab.bond_storage() == {"bond_consent": "1"}


def test_a_phone_whose_brand_contains_bot_is_tracked(
    collector: Collector, site: Site, browser: Browser
) -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 11; CUBOT P50) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.0.0 Mobile Safari/537.36"
    )
    context = browser.new_context(user_agent=ua)
    try:
        context.new_page().goto(site.page("cubot.html", collector.url, flushInterval=50))
        events = wait_stored(collector, lambda evs: len(evs) == 1, "the phone's page view")
        assert events[0]["context"]["userAgent"] == ua
    finally:
        context.close()


def test_back_to_a_page_restored_from_the_back_forward_cache_is_a_page_view(
    collector: Collector, site: Site, browser: Browser
) -> None:
    # Playwright turns the back-forward cache off by default; pages here are served without
    # Cache-Control: no-store, so Chromium keeps them in it.
    with_bfcache = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    try:
        page = with_bfcache.new_page()
        restored = (
            "<script>addEventListener('pageshow', e => window.restored = e.persisted)</script>"
        )
        a = site.page("a.html", collector.url, f"<a id=go href='b.html'>B</a>{restored}")
        site.page("b.html", collector.url)
        page.goto(a)
        wait_stored(collector, lambda evs: len(evs) == 1, "the page view of a")
        page.click("#go")
        page.wait_for_url("**/b.html")
        wait_stored(collector, lambda evs: len(evs) == 2, "the page view of b")
        # A page restored from the cache fires no load event, only pageshow.
        page.go_back(wait_until="commit")
        page.wait_for_function("window.restored !== undefined")
        assert page.evaluate("window.restored") is True, "a came back from the back-forward cache"
        events = wait_stored(collector, lambda evs: len(evs) == 3, "the page view of a again")
        assert [e["properties"]["path"] for e in events] == ["/a.html", "/b.html", "/a.html"]
        # The restored page goes on as before: same visitor and session, its queue still sends.
        page.evaluate("bond.track('Back on a')")
        events = wait_stored(collector, lambda evs: len(evs) == 4, "the event after the restore")
        assert names(events)[3] == "Back on a"
        assert len({(e["anonymousId"], e["context"]["sessionId"]) for e in events}) == 1
        unsent = "Object.keys(localStorage).filter(k => k.startsWith('bond_e')).length"
        wait_until(lambda: page.evaluate(unsent) == 0, what="the queue to empty")
    finally:
        with_bfcache.close()


# The prerendered page notes what it found once the SDK had loaded, before anyone saw it, and
# tells the page that prerendered it (through storage) to open it.
PRERENDERED = """<script>
document.querySelector('script[src$="/sdk/v1/bond.js"]').addEventListener('load', () => {
  const before = {
    prerendering: document.prerendering,
    stored: Object.keys(localStorage).filter((k) => k.startsWith('bond_')),
    cookie: document.cookie.includes('bond_id'),
  };
  const opened = () => bond.track('Opened', {
    before, activationStart: performance.getEntriesByType('navigation')[0].activationStart,
  });
  document.prerendering ? document.addEventListener('prerenderingchange', opened) : opened();
  localStorage.prerendered = 1;
});
</script>"""

# Prerenders opened.html by speculation rules, and opens it once its SDK has loaded.
PRERENDERING = """<!doctype html><title>home</title>
<script type=speculationrules>{"prerender": [{"source": "list", "urls": ["opened.html"]}]}</script>
<script>
const wait = setInterval(() => {
  if (localStorage.prerendered) clearInterval(wait), (location.href = 'opened.html');
}, 20);
</script>"""


def test_a_prerendered_page_stores_and_sends_nothing_until_the_visitor_opens_it(
    collector: Collector, site: Site, tmp_path: Path
) -> None:
    site.page("opened.html", collector.url, PRERENDERED, flushInterval=50)
    (site.root / "home.html").write_text(PRERENDERING)
    # Chromium prerenders nothing for a page DevTools (Playwright) is attached to: this browser
    # runs on its own, and what happened is read from the collector.
    chromium = subprocess.Popen(
        [
            CHROMIUM,
            *CHROMIUM_ARGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"{site.url}/home.html",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        events = wait_stored(
            collector, lambda evs: "Opened" in names(evs), "the prerendered page, opened"
        )
    finally:
        chromium.terminate()
        chromium.wait(timeout=10)
    assert names(events) == ["page", "Opened"]
    assert events[0]["properties"]["path"] == "/opened.html"
    opened = events[1]["properties"]
    assert opened["activationStart"] > 0, "the page was prerendered, then opened"
    # Before the visitor opened it: no id, no cookie, no queued event, so nothing to send.
    assert opened["before"] == {"prerendering": True, "stored": [], "cookie": False}


# Follows a link or sets location.hash, and returns once the browser has handled the change.
HASH_CHANGE = """js => new Promise((done) => {
  addEventListener('hashchange', done, {once: true});
  eval(js);
})"""


def test_an_in_page_anchor_is_no_page_view_but_a_hash_route_is(
    collector: Collector, site: Site, tab: Tab
) -> None:
    body = "<a id=reviews-link href='#reviews'>Reviews</a><div style='height: 3000px'></div>"
    body += "<h2 id=reviews>Reviews</h2>"
    tab.page.goto(site.page("anchor.html", collector.url, body, flushInterval=50))
    wait_stored(collector, lambda evs: len(evs) == 1, "the page view")
    tab.page.evaluate(HASH_CHANGE, "document.querySelector('#reviews-link').click()")
    tab.page.evaluate(HASH_CHANGE, "location.hash = '#/cart'")
    tab.page.evaluate(HASH_CHANGE, "location.hash = '#!/checkout'")
    tab.page.evaluate("bond.track('Done')")
    events = wait_stored(collector, lambda evs: "Done" in names(evs), "the event after the hashes")
    assert [e["properties"]["url"][len(site.url) + 1 :] for e in events if e["type"] == "page"] == [
        "anchor.html",
        "anchor.html#/cart",
        "anchor.html#!/checkout",
    ]


# What Prototype.js up to 1.6 (still on old shops) gives every array: a toJSON that returns
# the array already serialized, so JSON.stringify turns arrays into strings.
PROTOTYPE_JS = """
Array.prototype.toJSON = function () {
  return '[' + this.map((x) => JSON.stringify(x)).join(', ') + ']';
};
"""


def test_a_page_with_prototype_js_still_delivers_its_events_with_their_arrays(
    collector: Collector, site: Site, context: BrowserContext, tab: Tab
) -> None:
    context.add_init_script(PROTOTYPE_JS)
    tab.page.goto(site.page("prototype.html", collector.url, flushInterval=50))
    tab.page.evaluate("bond.track('Cart Viewed', {skus: ['a-1', 'b-2']})")
    events = wait_stored(collector, lambda evs: len(evs) == 2, "both events")
    assert names(events) == ["page", "Cart Viewed"]
    assert events[1]["properties"] == {"skus": ["a-1", "b-2"]}


def test_a_sandboxed_frame_without_cookies_still_sends(
    collector: Collector, site: Site, tab: Tab
) -> None:
    # Where Shopify runs a site's custom pixels: scripts allowed, but no origin of its own, so
    # document.cookie and localStorage both throw.
    site.page("pixel.html", collector.url, "<script>bond.track('Checkout Started')</script>")
    frame = "<iframe sandbox='allow-scripts' src='pixel.html'></iframe>"
    (site.root / "shop.html").write_text(f"<!doctype html><title>shop</title>{frame}")
    tab.page.goto(f"{site.url}/shop.html")
    events = wait_stored(collector, lambda evs: len(evs) == 2, "the frame's events")
    assert names(events) == ["page", "Checkout Started"]
    assert events[0]["anonymousId"] == events[1]["anonymousId"]
    assert events[0]["properties"]["path"] == "/pixel.html"


# A site's fetch wrapper that adds a header and assumes every call passes one (the SDK's does
# not): it throws instead of returning a promise, here for the first two calls.
THROWING_FETCH = """
let broken = 2;
const fetch1 = window.fetch;
window.fetch = (url, init) => {
  if (broken-- > 0) init.headers['X-CSRF-Token'] = 'token';
  return fetch1(url, init);
};
"""


def test_a_site_fetch_wrapper_that_throws_is_a_network_error_not_a_page_error(
    collector: Collector, site: Site, context: BrowserContext
) -> None:
    context.add_init_script(THROWING_FETCH)
    tab = Tab(context.new_page())
    errors: list[str] = []
    tab.page.on("pageerror", lambda error: errors.append(str(error)))
    tab.page.goto(site.page("wrapped.html", collector.url, flushInterval=50))
    events = wait_stored(collector, lambda evs: len(evs) == 1, "the page view, once fetch works")
    assert names(events) == ["page"]
    tab.wait_log("retry 1 0 TypeError")
    assert errors == [], "the SDK threw into the page"
