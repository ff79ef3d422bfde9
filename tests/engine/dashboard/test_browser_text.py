"""What the dashboard shows of hostile strings, read in real Chromium from a real `bond api`."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Page, async_playwright

from conftest import ADMIN_TOKEN, CHROMIUM, CHROMIUM_ARGS, ReadApi
from tests.engine.dashboard.dashboard_support import HookedEngine, Loop

# A right-to-left override: this address reads as "xelpmaxe.live@exe.png" when rendered.
SPOOFED = "x\u202egnp.exe@evil.example"
T = TypeVar("T")


class Tab:
    """A logged-in dashboard tab. Playwright's async API on a loop of its own: the sync API
    would leave a running loop on the main thread, and later tests' asyncio.run would fail."""

    def __init__(self, loop: Loop, page: Page) -> None:
        self.loop = loop
        self.page = page

    def __call__(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run(awaitable)


@pytest.fixture
def engine(data_dir: Path) -> Iterator[HookedEngine]:
    engine = HookedEngine(data_dir)
    yield engine
    engine.close()


@pytest.fixture
def tab(engine: HookedEngine) -> Iterator[Tab]:
    api = ReadApi(engine.config.data_dir).start()
    loop = Loop()
    playwright = loop.run(async_playwright().start())
    try:
        browser = loop.run(playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
        page = loop.run(browser.new_page())
        loop.run(page.goto(f"http://127.0.0.1:{api.port}/dashboard/"))
        loop.run(page.fill("#token", ADMIN_TOKEN))
        loop.run(page.click("button[type=submit]"))
        loop.run(page.wait_for_selector("#main .page-head"))
        yield Tab(loop, page)
        loop.run(browser.close())
    finally:
        loop.run(playwright.stop())
        loop.close()
        api.stop()


def open_person(tab: Tab, engine: HookedEngine, **key: str) -> dict[str, Any]:
    person = engine.person(**key)
    tab(tab.page.goto(tab.page.url.split("#")[0] + f"#/people/{person['id']}"))
    tab(tab.page.wait_for_selector("#timeline .tl-item"))
    tab(tab.page.wait_for_selector("#orders .feed-list, #orders .faint:text('No orders yet')"))
    return person


def test_bidi_overrides_and_invisible_characters_are_shown_not_obeyed(
    engine: HookedEngine, tab: Tab
) -> None:
    # Such an email is no identity (bond.ids.normalize_email), but a user id may hold anything,
    # and the trait is kept as sent.
    engine.identify("laptop", 1_000, user=SPOOFED, email=SPOOFED)
    engine.send("identify", anon="laptop", ts=2_000, traits={"name": "Ann\u200b\u2066Lee"})
    engine.run()
    open_person(tab, engine, anonymous_id="laptop")

    heading = tab(tab.page.inner_text("#profile h1"))
    assert heading == "x\ufffdgnp.exe@evil.example"
    # The email trait, and the name's two.
    assert tab(tab.page.inner_text("#traits")).count("\ufffd") >= 3
    script = "[...document.querySelectorAll('[title]')].map((e) => e.title).join(' ')"
    shown = tab(tab.page.inner_text("body")) + tab(tab.page.evaluate(script))
    assert not any(c in shown for c in "\u202e\u200b\u2066")


def test_orders_read_the_same_on_the_timeline_the_order_list_and_the_total(
    engine: HookedEngine, tab: Tab
) -> None:
    engine.identify("laptop", 1_000, user="u-ada")
    orders = (
        (2_000, {"order_id": {"ref": "A-7"}, "total": 100, "value": 90, "currency": "EUR"}),
        (3_000, {"order_id": 12345, "total": "abc", "value": "15", "currency": "usd"}),
        (4_000, {"order_id": True, "value": 5, "currency": "EUR"}),
    )
    for ts, props in orders:
        engine.send("track", anon="laptop", ts=ts, event="Order Completed", properties=props)
    engine.run()
    open_person(tab, engine, user_id="u-ada")

    timeline = tab(tab.page.locator("#timeline .tl-item .tl-detail").all_inner_texts())
    assert [t.split(" browser")[0] for t in timeline[:3]] == [
        "€5.00 · order true",
        "$15.00 · order 12345",
        '€100.00 · order {"ref":"A-7"}',  # the total, as the order list reads it
    ]
    titles = tab(tab.page.locator("#orders .feed-title").all_inner_texts())
    assert titles == ["true", "12345", '{"ref":"A-7"}']
    # Euros and dollars are not added together.
    assert tab(tab.page.inner_text("#profile .fact:has-text('Order value') .fact-value")) == (
        "€105.00 + $15.00"
    )
