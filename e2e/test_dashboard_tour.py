"""What a newcomer meets on the dashboard after one purchase in the demo shop, in Chromium:
the same order worth the same on the live view and on the person's page, one browser id shown
one way, an order id on one line, a way back from a person that does not exist, the collector's
counts that say why they exceed the log, and every view within a 320 px phone's screen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize

from conftest import wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Shopper, Stack
from e2e.test_dashboard import PHONE, Dashboard, configured_stack, open_tab

Shoppers = Callable[..., Shopper]
SMALL_PHONE: ViewportSize = {"width": 320, "height": 640}
EMAIL = "ada@example.com"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from configured_stack(tmp_path, "")


@pytest.fixture
def dashboard(browser: Browser, stack: Stack) -> Iterator[Dashboard]:
    yield from open_tab(browser, stack)


def past_the_right_edge(tab: Dashboard) -> list[str]:
    found: list[str] = tab.page.evaluate(
        """() => [...document.querySelectorAll('#main *')]
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5)
            .map((e) => `${e.tagName}.${e.className}`)"""
    )
    return found


def test_one_purchase_reads_the_same_everywhere_and_fits_a_small_phone(
    stack: Stack, shopper: Shoppers, dashboard: Dashboard
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.view("moss-teapot")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order(EMAIL)
    wait_until(
        lambda: (
            any(
                e.get("event") == "Order Completed"
                for e in stack.timeline(stack.person(EMAIL)["id"])  # type: ignore[index]
            )
            if stack.person(EMAIL)
            else False
        ),
        timeout=DELIVERY_TIMEOUT,
        what="the order in Ada's timeline",
    )

    dashboard.log_in()
    page = dashboard.page
    dashboard.view("live", "#main tbody tr[data-identified=true]")
    order = page.locator("#main tbody tr", has_text="Order Completed")
    order.wait_for(timeout=DELIVERY_TIMEOUT * 1000)
    live_value = order.locator("td[data-label=Detail]").inner_text()

    person_id = stack.person(EMAIL)["id"]  # type: ignore[index]
    dashboard.view(f"people/{person_id}", "#orders .feed-item")
    page.wait_for_selector("#timeline .tl-item")
    # The order's worth, as the live view shows it and as the person's page does.
    assert live_value == page.inner_text("#orders .feed-item .num")
    assert live_value == page.inner_text("#profile .fact:has-text('Order value') .fact-value")
    # The browser that bought, shortened alike in the timeline and among the identifiers.
    browser_ids = {
        t.split()[-1] for t in page.locator("#timeline .tl-detail .faint").all_inner_texts()
    }
    assert browser_ids == set(page.locator("#main dl.kv dt.mono").all_inner_texts())
    # The order id on one line, not broken at its hyphen.
    lines = page.evaluate(
        """() => { const range = document.createRange();
            range.selectNodeContents(document.querySelector('#orders .feed-title'));
            return range.getClientRects().length; }"""
    )
    assert lines == 1

    dashboard.view("people/999999", ".error-banner")
    assert page.inner_text(".error-banner") == "no person 999999"
    page.click("a.crumb")
    page.wait_for_selector("#people-list")

    dashboard.view("health", "#health-counts [data-count=accepted]")
    wait_until(
        lambda: page.inner_text("[data-count=accepted]") != "unknown",
        what="the collector's counts",
    )
    assert "resent events included" in page.inner_text("#health-counts")

    for viewport in (SMALL_PHONE, PHONE):
        page.set_viewport_size(viewport)
        for route, ready in (
            ("live", "#main tbody tr"),
            ("stitches", "#main .page-head"),
            ("people", "#people-list li"),
            (f"people/{person_id}", "#timeline .tl-item"),
            ("households", "#main .page-head"),
            ("alerts", "#alerts"),
            ("health", "#health-counts .stat"),
        ):
            dashboard.view(route, ready)
            assert past_the_right_edge(dashboard) == [], (viewport, route)
