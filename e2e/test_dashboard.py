"""The live dashboard in Chromium against the whole stack: log in, watch the storefront live,
follow a stitch to a person's history, a household's members and orders, alerts, and the
strings from browsers shown as text. Each view is saved as a screenshot at laptop and phone
widths under test-artifacts/e2e/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, ViewportSize

from bond.bench.processes import free_port
from bond.simulate.households import Settings, generate
from bond.simulate.offline import batches
from bond.simulate.traffic import messages
from conftest import ADMIN_TOKEN, WRITE_KEY, wait_until
from e2e.conftest import ARTIFACTS, DELIVERY_TIMEOUT, Shopper, Stack
from engine.alerts.fake_discord import FakeDiscord
from tests.engine.alerts.alert_support import fake_discord

Shoppers = Callable[..., Shopper]
LAPTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Once the collector has committed an event, the live stream shows it within this long.
LIVE_WITHIN_MS = 1000
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_EMAIL = "<img/src=x/onerror=alert(2)>@evil.example"


class Dashboard:
    """An operator's browser tab on the dashboard, failing the test on any page error, dialog
    or Content-Security-Policy violation. `options` go to the browser context (a zoom's
    device scale, reduced motion)."""

    def __init__(self, browser: Browser, base: str, **options: Any) -> None:
        self.base = base
        self.context = browser.new_context(**{"viewport": LAPTOP, **options})
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"error: {error}"))
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        # A refused login answers 401 or 403 on purpose; anything else (a CSP violation, a
        # script error) is a problem.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def open(self, route: str = "") -> Response | None:
        return self.page.goto(f"{self.base}/dashboard/{route}")

    def log_in(self, token: str = ADMIN_TOKEN) -> None:
        self.open()
        self.page.wait_for_url("**/dashboard/login")
        self.page.fill("#token", token)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")
        # Settled: the login page again, or the dashboard with its first view drawn.
        self.page.wait_for_selector("#token, #main .page-head")

    def view(self, route: str, ready: str) -> None:
        self.page.goto(f"{self.base}/dashboard/#/{route}")
        self.page.wait_for_selector(ready)

    def shoot(self, name: str) -> None:
        """The current view at laptop and at phone width."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for size, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
            self.page.set_viewport_size(viewport)
            self.page.wait_for_timeout(150)  # one frame for the layout to settle
            path = ARTIFACTS / f"dashboard-{name}-{size}.png"
            self.page.screenshot(path=str(path), full_page=True)
        self.page.set_viewport_size(LAPTOP)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with fake_discord() as fake:
        yield fake


RULE = '[[alerts.rules]]\nname = "big checkout"\nkind = "identified"\nthreshold = 50\n'


def configured_stack(tmp_path: Path, toml: str) -> Iterator[Stack]:
    """The storefront stack with `toml` as its bond.toml, and a read API that knows the
    collector's address, so the health view can read its counts."""
    config = tmp_path / "bond.toml"
    port = free_port()
    config.write_text(f"[collector]\nport = {port}\n{toml}")
    env: dict[str, str | None] = {"BOND_CONFIG": str(config)}
    running = Stack(tmp_path / "bond-data", worker_env=env, api_env=env, collector_port=port)
    yield running
    running.stop()


def open_tab(browser: Browser, stack: Stack) -> Iterator[Dashboard]:
    """A dashboard tab on the stack; any page error, dialog or CSP violation fails the test."""
    tab = Dashboard(browser, stack.api.url.removesuffix("/api"))
    yield tab
    tab.close()
    assert not tab.problems, tab.problems


@pytest.fixture
def stack(tmp_path: Path, discord: FakeDiscord) -> Iterator[Stack]:
    """A Discord rule on every identified checkout over 50."""
    yield from configured_stack(tmp_path, f'[alerts]\nwebhook_url = "{discord.url}"\n{RULE}')


@pytest.fixture
def dashboard(browser: Browser, stack: Stack) -> Iterator[Dashboard]:
    yield from open_tab(browser, stack)


def committed(stack: Stack, check: Callable[[dict[str, Any]], bool], what: str) -> None:
    wait_until(lambda: any(check(e) for e in stack.logged()), timeout=DELIVERY_TIMEOUT, what=what)


def test_log_in_and_watch_the_storefront_live_with_pause_and_filter(
    stack: Stack, shopper: Shoppers, dashboard: Dashboard
) -> None:
    dashboard.open()
    dashboard.page.wait_for_url("**/dashboard/login")
    dashboard.shoot("login")
    dashboard.log_in()
    dashboard.page.wait_for_selector("#connection[data-state=live]")
    dashboard.page.evaluate("window.sameDocument = true")

    visitor = shopper()
    visitor.visit("catalogue.html?category=plants")
    committed(stack, lambda e: e.get("properties", {}).get("search") == "?category=plants", "page")
    row = "#live-table tbody tr:has-text('/catalogue.html')"
    dashboard.page.wait_for_selector(row, timeout=LIVE_WITHIN_MS)
    assert dashboard.page.evaluate("window.sameDocument")  # pushed, not reloaded

    dashboard.page.click("#pause")
    visitor.view("monstera")
    committed(stack, lambda e: e.get("event") == "Product Viewed", "the product view")
    dashboard.page.wait_for_selector(".paused-note:has-text('new')")
    assert dashboard.page.locator("#live-table tr:has-text('Monstera')").count() == 0
    dashboard.page.click("#pause")
    dashboard.page.wait_for_selector("#live-table tr:has-text('Monstera Deliciosa')")

    dashboard.page.click(".seg button[data-value=track]")
    dashboard.page.fill("#live-filter", "monstera")
    rows = dashboard.page.locator("#live-table tbody tr")
    assert rows.count() >= 1
    assert all("track" in text for text in rows.all_inner_texts())
    dashboard.page.fill("#live-filter", "")
    dashboard.page.click(".seg button[data-value=all]")
    dashboard.shoot("live")


def test_follow_a_stitch_to_the_persons_stitched_history(
    stack: Stack, shopper: Shoppers, dashboard: Dashboard
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.view("speckled-mug")
    visitor.add_to_cart()
    visitor.visit("catalogue.html?category=plants")
    visitor.view("monstera")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order("grace.hopper@example.com")
    # Eleven anonymous events, the identify, the order and the thank-you page, all applied.
    wait_until(
        lambda: (stack.person("grace.hopper@example.com") or {}).get("event_count") == 14,
        timeout=DELIVERY_TIMEOUT,
        what="the whole visit to be applied",
    )

    dashboard.log_in()
    dashboard.view("stitches", "#stitch-list li[data-kind=identified]")
    item = dashboard.page.locator("#stitch-list li[data-kind=identified]").first
    assert "grace.hopper@example.com" in item.inner_text()
    assert "anonymous events stitched" in item.inner_text()
    dashboard.shoot("stitches")

    item.locator("a.button").click()
    dashboard.page.wait_for_selector("#timeline .tl-item.stitched")
    stitched = dashboard.page.locator("#timeline .tl-item[data-stitched=true]")
    after = dashboard.page.locator("#timeline .tl-item[data-stitched=false]")
    # Everything before the email was typed at checkout was anonymous and is now hers.
    assert stitched.count() == 11
    assert after.count() == 3  # the identify, the order and the thank-you page
    assert (stitched.last.locator(".tl-title").text_content() or "").startswith("Viewed /")
    assert "anonymous · stitched" in stitched.first.inner_text()
    dashboard.page.wait_for_selector("#orders .feed-item:has-text('Speckled Mug')")
    assert "69.00" in dashboard.page.inner_text("#orders")
    dashboard.shoot("person")

    browser_id = next(e["anonymousId"] for e in stack.logged() if e["type"] == "identify")
    dashboard.view("people", "#person-search")
    dashboard.page.fill("#person-search", browser_id)
    with dashboard.page.expect_navigation(url="**/#/people/*"):
        dashboard.page.press("#person-search", "Enter")
    dashboard.page.wait_for_selector("#profile:has-text('grace.hopper@example.com')")
    dashboard.view("people", "#person-search")
    dashboard.shoot("people")


def test_the_people_list_shows_the_most_recently_active_first_and_opens_a_person(
    stack: Stack, shopper: Shoppers, dashboard: Dashboard
) -> None:
    # Fifty-five customers the site's server identified an hour ago, one a second; then a
    # visitor signs up in the shop now.
    hour_ago = int(time.time() * 1000) - 3_600_000
    customers = [
        {
            "type": "identify",
            "messageId": f"customer-{n}",
            "userId": f"customer-{n:02}",
            "traits": {"email": f"customer-{n:02}@example.com"},
            "timestamp": datetime.fromtimestamp((hour_ago + n * 1000) / 1000, UTC).isoformat(),
        }
        for n in range(55)
    ]
    httpx.post(
        f"{stack.collector.url}/v1/batch", json={"writeKey": WRITE_KEY, "batch": customers}
    ).raise_for_status()
    shopper().sign_up("sam.lee@example.com")
    wait_until(
        lambda: stack.person("sam.lee@example.com") and stack.person("customer-00@example.com"),
        timeout=DELIVERY_TIMEOUT,
        what="the customers and the sign-up to be applied",
    )

    dashboard.log_in()
    dashboard.view("people", "#people-list li[data-person]")
    rows = dashboard.page.locator("#people-list li[data-person]")
    assert rows.count() == 50  # a page
    assert "sam.lee@example.com" in rows.first.inner_text()
    assert "customer-54@example.com" in rows.nth(1).inner_text()
    dashboard.page.click("#people-older")
    dashboard.page.wait_for_selector("#people-list li[data-person]:nth-child(56)")
    assert rows.count() == 56 and "customer-00@example.com" in rows.last.inner_text()
    assert dashboard.page.locator("#people-older").count() == 0  # nothing older
    dashboard.shoot("people-list")

    rows.first.locator("a.who").click()
    dashboard.page.wait_for_url("**/#/people/*")
    dashboard.page.wait_for_selector("#profile:has-text('sam.lee@example.com')")


def test_a_households_members_and_each_orders_probabilities(
    stack: Stack, dashboard: Dashboard
) -> None:
    # Eight weeks of family shopping that ended a fortnight ago, starting on a Monday so the
    # weekdays (and so the households the model finds) are the same whenever the test runs.
    day, week = 86_400_000, 7 * 86_400_000
    monday = (int(time.time() * 1000) - 4 * day) // week * week + 4 * day
    settings = Settings(households=12, weeks=8, difficulty=0.1, seed=5, start_ms=monday - 10 * week)
    families = [h for h in generate(settings) if h.size >= 2][:3]
    with httpx.Client(base_url=stack.collector.url, timeout=30) as client:
        for batch in batches(messages(families), 500):
            body = {"writeKey": WRITE_KEY, "batch": batch}
            assert client.post("/v1/batch", json=body).status_code == 200
    sent = len(stack.logged())
    wait_until(
        lambda: stack.api.get("/status").json()["offset"] >= sent,
        timeout=120,
        interval=0.5,
        what="the worker to apply the families' sessions",
    )
    account = stack.api.get("/persons", user_id=families[0].account).json()
    household = stack.api.get(f"/persons/{account['id']}/household").json()
    assert len(household["members"]) >= 2
    order = next(a for a in reversed(household["attributions"]) if len(a["probabilities"]) >= 2)

    dashboard.log_in()
    dashboard.view("households", ".household-card")
    dashboard.shoot("households")
    dashboard.page.click(f".household-card[data-person='{account['id']}']")
    dashboard.page.wait_for_selector("#members .member")
    assert dashboard.page.locator("#members .member").count() == len(household["members"])
    assert dashboard.page.locator("svg.curves path").count() == 2 * len(household["members"])
    text = dashboard.page.inner_text(f"#conversions tr[data-order='{order['order_id']}']")
    assert f"{round(order['probability'] * 100)}%" in text
    for probability in order["probabilities"].values():
        assert f"{round(probability * 100)}%" in text
    page = dashboard.page.inner_text("body")
    assert f"{len(household['members'])} members told apart by behaviour" in page
    for change in household["drift"]:  # counted in words a person reads: "1 member", "2 members"
        before = change["members_before"]
        assert f"{before} {'member' if before == 1 else 'members'} before" in page
    dashboard.shoot("household")


def test_alert_states_and_reasons_and_the_health_view(
    stack: Stack, shopper: Shoppers, dashboard: Dashboard, discord: FakeDiscord
) -> None:
    discord.then("404")  # the first alert finds the webhook gone; the next one goes through
    for email in ("first.buyer@example.com", "second.buyer@example.com"):
        visitor = shopper()
        visitor.visit("")
        visitor.view("moss-teapot")
        visitor.add_to_cart()
        visitor.start_checkout()
        visitor.place_order(email)
        wait_until(
            lambda: (
                [a["state"] for a in stack.api.get("/alerts").json()["alerts"][:1]]
                in (["sent"], ["failed"])
            ),
            timeout=DELIVERY_TIMEOUT,
            what=f"{email}'s alert to be settled",
        )

    dashboard.log_in()
    dashboard.view("alerts", "#alerts tr[data-state=sent]")
    failed = dashboard.page.locator("#alerts tr[data-state=failed]")
    assert "404" in failed.inner_text()
    assert "first.buyer@example.com" in failed.inner_text()
    assert "second.buyer@example.com" in dashboard.page.inner_text("#alerts tr[data-state=sent]")
    dashboard.page.click(".seg button[data-value=failed]")
    assert dashboard.page.locator("#alerts tbody tr").count() == 1
    dashboard.page.click(".seg button[data-value=all]")
    dashboard.shoot("alerts")

    dashboard.view("health", "#health-counts [data-count=accepted]")
    with httpx.Client(base_url=stack.collector.url, timeout=10) as client:
        for burst in range(1, 7):  # traffic that rises while the charts are open
            batch = (
                [{"type": "track", "anonymousId": f"load-{burst}", "event": "Ping"}] * 20 * burst
            )
            body = {"writeKey": WRITE_KEY, "batch": batch}
            assert client.post("/v1/batch", json=body).status_code == 200
            dashboard.page.wait_for_timeout(400)
    dashboard.page.wait_for_selector("#health-chart .axis")

    def count(name: str) -> int:
        return int(dashboard.page.inner_text(f"[data-count={name}]").replace(",", ""))

    # Accepted counts every event the collector took, a resent one too; the log keeps it once.
    # Polled from here: wait_for_function evaluates a string, which the page's CSP refuses.
    wait_until(
        lambda: dashboard.page.inner_text("[data-count=accepted]") != "unknown",
        what="the collector's counts",
    )
    wait_until(
        lambda: count("accepted") - count("deduplicated") == len(stack.logged()),
        what="the health view to count every logged event",
    )
    assert dashboard.page.inner_text("#health-lag .stat-value").startswith("0")
    dashboard.shoot("health")


def test_strings_from_browsers_are_shown_as_text_and_never_run(
    stack: Stack, shopper: Shoppers, dashboard: Dashboard
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.page.evaluate(
        "([name, email]) => { bond.track('Product Viewed', {name, product_id: 'x'});"
        " bond.identify(null, {email, name}); }",
        [XSS_NAME, XSS_EMAIL],
    )
    committed(stack, lambda e: (e.get("traits") or {}).get("email") == XSS_EMAIL, "the identify")
    expected = ["page /", "Product Viewed x", f"identify {XSS_EMAIL}"]
    stack.wait_for_timeline(XSS_EMAIL, expected)

    dashboard.log_in()
    dashboard.page.wait_for_selector(f"#live-table td:text-is('{XSS_NAME}')")
    assert dashboard.page.locator(f"#live-table a:has-text('{XSS_EMAIL.lower()}')").count() >= 1
    dashboard.view("stitches", "#stitch-list li[data-kind=identified]")
    assert XSS_EMAIL.lower() in dashboard.page.inner_text("#stitch-list")
    dashboard.page.click("#stitch-list li[data-kind=identified] a.button")
    dashboard.page.wait_for_selector("#timeline .tl-item")
    assert XSS_EMAIL.lower() in dashboard.page.inner_text("#profile h1")
    assert XSS_NAME in dashboard.page.inner_text("#timeline")
    assert XSS_NAME in dashboard.page.inner_text("#traits")

    # Shown literally, and nothing was parsed as markup: no image element exists at all.
    assert dashboard.page.locator("img").count() == 0
    assert dashboard.page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    dashboard.shoot("person-xss")

    dashboard.view("people", "#people-list li[data-person]")
    assert XSS_EMAIL.lower() in dashboard.page.inner_text("#people-list")
    assert dashboard.page.locator("img").count() == 0
    assert dashboard.page.evaluate("document.querySelectorAll('[onerror]').length") == 0


def test_a_write_key_cannot_log_in_logout_works_and_the_csp_is_sent(
    stack: Stack, dashboard: Dashboard
) -> None:
    response = dashboard.open()
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp

    dashboard.log_in(WRITE_KEY)
    assert "write key" in dashboard.page.inner_text(".form-error")
    assert dashboard.page.url.endswith("/dashboard/login")

    dashboard.log_in()
    dashboard.page.wait_for_selector("#connection[data-state=live]")
    page = dashboard.open()
    assert page is not None and "unsafe-inline" not in page.headers["content-security-policy"]
    wait_until(lambda: dashboard.page.input_value("#csrf") != "", what="the logout form's token")
    with dashboard.page.expect_navigation(url="**/dashboard/login"):
        dashboard.page.click("#logout button")
    session = dashboard.page.request.get(f"{dashboard.base}/dashboard/api/live")
    assert session.status == 401
    dashboard.open()
    dashboard.page.wait_for_url("**/dashboard/login")
