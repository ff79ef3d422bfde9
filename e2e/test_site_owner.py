"""A site owner's own site with Bond added by following README.md alone, in Chromium.

Not the demo storefront: static pages, a single-page app that routes with `history.pushState`
and hash links, a sign-up form that JavaScript submits with `fetch` (calling `preventDefault`),
and, for a consent-first site, a consent banner. The site has its own origin; `bond serve`,
`bond worker` and `bond api` run with a `bond.toml` naming the site's source, its write key and
its origin, as README.md's Configuration shows; every page has README.md's snippet with only the
host and key substituted (and `requireConsent` added where the site asks first). What arrived is
read back from the read API, as the site owner would.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

from bond.bench.processes import free_port
from conftest import ROOT, Collector, ReadApi, Worker, start_together, stop_together
from conftest import wait_until as poll
from e2e.conftest import ARTIFACTS, DELIVERY_TIMEOUT

SITE_KEY = "acme-notes-write-key"
Event = dict[str, Any]

FOUND = re.search(
    r"## The snippet.*?```html\n(<script>\n.*?</script>)\n```",
    (ROOT / "README.md").read_text(),
    re.S,
)
assert FOUND, "README.md shows the snippet under 'The snippet'"
README_SNIPPET = FOUND.group(1)


def snippet(host: str, options: str) -> str:
    """README.md's snippet for the site's collector and key, `options` added to init's."""
    text = README_SNIPPET.replace("'https://bond.example.com'", f"'{host}'")
    text = text.replace("YOUR_WRITE_KEY", SITE_KEY)
    return text.replace("{ host: host }", f"{{ host: host{options} }}")


# The site's pages; {snippet} is where its owner pasted the snippet, early in <head>.
PAGES = {
    "index.html": """<title>Acme Notes</title>{snippet}</head><body>{banner}
<h1>Acme Notes</h1>
<a id=pricing href=pricing.html data-bond-event="Pricing Clicked" data-bond-prop-from=hero>
<span>See pricing</span></a> <a id=signup href=signup.html>Sign up</a>""",
    "pricing.html": """<title>Pricing · Acme Notes</title>{snippet}</head><body>{banner}
<button id=choose data-bond-event="Plan Chosen" data-bond-prop-plan=team>Choose Team</button>
<a id=app href=app.html>Open the app</a>""",
    # Routes as single-page apps do: the URL changes first, then the view and its title render.
    # An old address redirects at once (replaceState right after pushState).
    "app.html": """<title>Inbox · Acme Notes</title>{snippet}</head><body>{banner}
<nav><a id=inbox href=/app.html data-route>Inbox</a>
<a id=settings href=/app/settings data-route>Settings</a>
<a id=legacy href=/app/preferences data-route>Preferences (old link)</a>
<a id=faq href="#faq">FAQ</a> <a id=help href="#/help">Help</a></nav>
<h1 id=view>Inbox</h1><div style="height: 2000px"></div><h2 id=faq>FAQ</h2>
<script>
const VIEWS = {'/app.html': 'Inbox', '/app/settings': 'Settings', '#/help': 'Help'};
function render() {
  const view = VIEWS[location.hash.startsWith('#/') ? location.hash : location.pathname];
  document.querySelector('#view').textContent = view;
  document.title = view + ' · Acme Notes';
}
document.addEventListener('click', (e) => {
  const link = e.target.closest('a[data-route]');
  if (!link) return;
  e.preventDefault();
  history.pushState({}, '', link.getAttribute('href'));
  if (location.pathname == '/app/preferences') history.replaceState({}, '', '/app/settings');
  render();
});
addEventListener('popstate', render);
</script>""",
    # The form never leaves the page: JavaScript posts it and shows the answer.
    "signup.html": """<title>Sign up · Acme Notes</title>{snippet}</head><body>{banner}
<form id=form><input id=email type=email name=email required>
<input id=password type=password name=password required><button id=submit>Sign up</button></form>
<p id=done></p>
<script>
document.querySelector('#form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = document.querySelector('#email').value;
  const answer = await fetch('/api/signup', {method: 'POST', body: JSON.stringify({email})});
  document.querySelector('#done').textContent = (await answer.json()).welcome;
});
</script>""",
}

# A consent-first site shows this banner on every page, and nothing may leave before Accept.
BANNER = """<div id=banner>We would like to measure how you use this site.
<button id=accept onclick="bond.consent(); banner.remove()">Accept</button>
<button id=decline onclick="banner.remove()">Decline</button></div>"""


class Site:
    """The site owner's own site, on its own origin; `csp` gives a page a policy header."""

    def __init__(self, root: Path, collector_url: str, options: str, consent_first: bool) -> None:
        root.mkdir(parents=True)
        self.csp: dict[str, str] = {}
        for name, html in PAGES.items():
            page = html.replace("{snippet}", snippet(collector_url, options))
            page = page.replace("{banner}", BANNER if consent_first else "")
            (root / name).write_text(f"<!doctype html><html><head><meta charset=utf-8>{page}")
        (root / "favicon.ico").write_bytes(b"")
        csp = self.csp

        class Handler(SimpleHTTPRequestHandler):
            def do_POST(self) -> None:
                posted = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps({"welcome": f"Welcome, {posted['email']}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def end_headers(self) -> None:
                if policy := csp.get(self.path.lstrip("/")):
                    self.send_header("Content-Security-Policy", policy)
                super().end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.root = root
        self.server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bond:
    """The collector, worker and read API, configured by a bond.toml with the site's source."""

    def __init__(self, data_dir: Path, port: int, origin: str) -> None:
        data_dir.mkdir(parents=True)
        config = data_dir / "bond.toml"
        config.write_text(
            f'[[sources]]\nname = "acme"\nwrite_key = "{SITE_KEY}"\norigins = ["{origin}"]\n'
        )
        # The key is the file's: the fixtures' BOND_WRITE_KEY would replace it.
        env: dict[str, str | None] = {"BOND_CONFIG": str(config), "BOND_WRITE_KEY": None}
        self.collector = Collector(data_dir, port, env)
        self.worker = Worker(data_dir, env)
        self.api = ReadApi(data_dir, env)
        start_together(self.collector, self.worker, self.api)

    def stop(self) -> None:
        stop_together(self.api, self.worker, self.collector)

    def history(self, email: str, count: int) -> tuple[Event, list[Event]]:
        """The person with `email` and their stitched timeline (oldest first), once it holds
        `count` events."""
        seen: dict[str, Any] = {}

        def arrived() -> bool:
            answer = self.api.get("/persons", email=email)
            if answer.status_code == 404:
                return False
            seen["person"] = person = answer.json()
            page = self.api.get(f"/persons/{person['id']}/timeline", limit="500").json()
            seen["events"] = page["events"][::-1]
            return len(seen["events"]) >= count

        try:
            poll(arrived, timeout=DELIVERY_TIMEOUT, interval=0.1, what=f"{email}'s timeline")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen.get('events')}") from None
        return seen["person"], seen["events"]


Owner = Callable[..., tuple[Site, Bond]]


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Owner]:
    """Makes the site (`options` added to its snippet's init) and its Bond."""
    running: list[tuple[Site, Bond]] = []

    def make(options: str = "", consent_first: bool = False) -> tuple[Site, Bond]:
        port = free_port()
        site = Site(tmp_path / "site", f"http://127.0.0.1:{port}", options, consent_first)
        running.append((site, Bond(tmp_path / "bond-data", port, site.url)))
        return running[-1]

    yield make
    for site, bond in running:
        bond.stop()
        site.stop()


class Visitor:
    """One browser profile on the site: its tabs, the requests they made to the collector, and
    whatever the pages threw."""

    def __init__(self, context: BrowserContext, collector_url: str) -> None:
        self.context = context
        self.errors: list[str] = []
        self.sent: list[str] = []
        self.tabs: list[Page] = []

        def sent(request: Request) -> None:
            if request.url.startswith(collector_url + "/v1/"):
                self.sent.append(request.url)

        context.on("request", sent)

    def open(self, url: str) -> Page:
        tab = self.context.new_page()
        tab.on("pageerror", lambda error: self.errors.append(str(error)))
        self.tabs.append(tab)
        tab.goto(url)
        ready(tab)
        return tab


def ready(tab: Page) -> None:
    """The SDK has replaced the snippet's stub."""
    tab.wait_for_function("window.bond && bond.version")


@pytest.fixture
def visitors(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Visitor]]:
    """Makes visitors, each in a new browser context; the last tab of each is saved as a
    screenshot under test-artifacts/e2e/, and anything a page threw fails the test."""
    made: list[Visitor] = []

    def make(bond: Bond) -> Visitor:
        made.append(Visitor(browser.new_context(), bond.collector.url))
        return made[-1]

    yield make
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for n, visitor in enumerate(made):
        if visitor.tabs and not visitor.tabs[-1].is_closed():
            path = ARTIFACTS / f"{request.node.name}-{n + 1}.png"
            visitor.tabs[-1].screenshot(path=str(path), full_page=True)
        visitor.context.close()
    errors = [error for visitor in made for error in visitor.errors]
    assert not errors, f"the site's pages threw: {errors}"


def sign_up(tab: Page, email: str) -> None:
    tab.fill("#email", email)
    tab.fill("#password", "correct horse battery")
    tab.click("#submit")
    tab.wait_for_selector(f"text=Welcome, {email}")


def views(events: list[Event], site: Site) -> list[tuple[str, str, str]]:
    """Each page view's address, title and referrer, relative to the site."""

    def local(url: str) -> str:
        return url.removeprefix(site.url)

    return [
        (local(p["url"]), p["title"], local(p["referrer"]))
        for p in (e["properties"] for e in events if e["type"] == "page")
    ]


def test_a_single_page_apps_views_and_a_script_handled_sign_up_arrive_as_the_owner_expects(
    owner: Owner, visitors: Callable[..., Visitor]
) -> None:
    site, bond = owner()
    ann = visitors(bond)
    tab = ann.open(f"{site.url}/index.html")
    tab.click("#pricing span")
    tab.wait_for_url("**/pricing.html")
    ready(tab)
    tab.click("#choose")
    tab.click("#app")
    tab.wait_for_url("**/app.html")
    ready(tab)
    tab.click("#settings")
    tab.wait_for_function("document.title.startsWith('Settings')")
    tab.click("#faq")  # an in-page anchor: no page view
    tab.click("#help")
    tab.wait_for_function("document.title.startsWith('Help')")
    tab.go_back()  # to the settings view
    tab.wait_for_function("document.title.startsWith('Settings')")
    tab.click("#inbox")
    tab.wait_for_function("document.title.startsWith('Inbox')")
    tab.click("#legacy")  # redirected at once to the settings view
    tab.wait_for_function("document.title.startsWith('Settings')")
    tab.goto(f"{site.url}/signup.html")
    ready(tab)
    sign_up(tab, "ann@example.com")

    person, events = bond.history("ann@example.com", 12)
    assert [e["event"] or e["type"] for e in events] == [
        *["page", "Pricing Clicked", "page", "Plan Chosen"],
        *["page", "page", "page", "page", "page", "page"],
        *["page", "identify"],
    ]
    assert events[1]["properties"] == {"from": "hero"}
    assert events[-1]["traits"] == {"email": "ann@example.com"}, "the JS-handled form identifies"
    assert len(person["anonymous_ids"]) == 1
    # Each view has the title its app rendered for it, and the address before it as referrer.
    assert views(events, site) == [
        ("/index.html", "Acme Notes", ""),
        ("/pricing.html", "Pricing · Acme Notes", "/index.html"),
        ("/app.html", "Inbox · Acme Notes", "/pricing.html"),
        ("/app/settings", "Settings · Acme Notes", "/app.html"),
        ("/app/settings#/help", "Help · Acme Notes", "/app/settings"),
        ("/app/settings#faq", "Settings · Acme Notes", "/app/settings#/help"),
        ("/app.html", "Inbox · Acme Notes", "/app/settings"),
        ("/app/settings", "Settings · Acme Notes", "/app.html"),
        ("/signup.html", "Sign up · Acme Notes", ""),
    ]


def test_tabs_opened_before_consent_stay_one_visitor_after_it(
    owner: Owner, visitors: Callable[..., Visitor]
) -> None:
    site, bond = owner(", requireConsent: true", consent_first=True)
    bea = visitors(bond)
    home = bea.open(f"{site.url}/index.html")
    pricing = bea.open(f"{site.url}/pricing.html")
    pricing.click("#choose")
    home.click("#pricing span")  # the home tab moves on, still without consent
    home.wait_for_url("**/pricing.html")
    ready(home)
    assert bea.sent == [], "nothing leaves before consent"
    assert bea.context.cookies() == []
    home.click("#accept")
    pricing.click("#choose")  # the other tab takes up the consent with its next event
    pricing.goto(f"{site.url}/signup.html")
    ready(pricing)
    sign_up(pricing, "bea@example.com")

    # What the visitor did before consent in the home tab's first page is gone with that page;
    # everything from then on, in both tabs, is one visitor's.
    person, events = bond.history("bea@example.com", 6)
    assert sorted(e["event"] or e["type"] for e in events) == sorted(
        ["page", "page", "Plan Chosen", "Plan Chosen", "page", "identify"]
    )
    assert len(person["anonymous_ids"]) == 1, "each tab's memory id gave way to the stored one"
    assert {e["anonymous_id"] for e in events} == set(person["anonymous_ids"])
    assert [c["value"] for c in bea.context.cookies()] == person["anonymous_ids"]


def csp_hash(html: str) -> str:
    """The CSP source that allows the page's first inline script: the snippet."""
    inline = re.search(r"<script>(.*?)</script>", html, re.S)
    assert inline
    digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
    return f"'sha256-{digest}'"


@pytest.mark.parametrize("allow", ["hash", "nonce"])
def test_a_strict_content_security_policy_that_allows_the_collector_is_enough(
    owner: Owner, visitors: Callable[..., Visitor], allow: str
) -> None:
    site, bond = owner()
    page = site.root / "pricing.html"
    collector = bond.collector.url
    if allow == "hash":  # the snippet's hash, and the collector for the SDK it loads
        scripts = f"{csp_hash(page.read_text())} {collector}"
    else:  # a nonce on the snippet, which 'strict-dynamic' extends to the script it adds
        page.write_text(page.read_text().replace("<script>", "<script nonce=r4nd0m>", 1))
        scripts = "'nonce-r4nd0m' 'strict-dynamic'"
    policy = f"default-src 'none'; script-src {scripts}; connect-src {collector}"
    site.csp["pricing.html"] = policy
    cid = visitors(bond)
    violations: list[str] = []

    def violated(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    cid.context.on("console", violated)
    tab = cid.open(f"{site.url}/pricing.html")
    tab.click("#choose")
    tab.goto(f"{site.url}/signup.html")  # the queued click leaves by beacon on the way out
    ready(tab)
    sign_up(tab, "cid@example.com")
    _, events = bond.history("cid@example.com", 4)
    assert [e["event"] or e["type"] for e in events] == ["page", "Plan Chosen", "page", "identify"]
    assert violations == []
