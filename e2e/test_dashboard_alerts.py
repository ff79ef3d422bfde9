"""The dashboard's alerts view past its first page: more alerts than one page holds, read back
with Load older, in Chromium against the whole stack."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from conftest import WRITE_KEY, wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Stack
from e2e.test_dashboard import RULE, Dashboard, configured_stack, open_tab

BUYERS = 205  # one page of 200, and five more behind Load older
PAGE = 200


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The rule alerts on every identified buyer and there is no webhook, so the alerts stay
    pending and their number is exactly the number of buyers."""
    yield from configured_stack(tmp_path, RULE)


@pytest.fixture
def dashboard(browser: Browser, stack: Stack) -> Iterator[Dashboard]:
    yield from open_tab(browser, stack)


def outbox_size(data_dir: Path) -> int:
    uri = f"file:{data_dir / 'state.db'}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM alert_outbox").fetchone()[0])
    except sqlite3.OperationalError:  # the worker has not created the outbox yet
        return 0


def test_load_older_reads_the_alerts_past_the_newest_page(
    stack: Stack, dashboard: Dashboard
) -> None:
    batch = []
    for n in range(BUYERS):
        browser, email = f"buyer-{n}", f"buyer{n}@example.com"
        batch += [
            {"type": "identify", "anonymousId": browser, "traits": {"email": email}},
            {
                "type": "track",
                "anonymousId": browser,
                "event": "Order Completed",
                "properties": {"order_id": f"FK-{n}", "revenue": 68, "currency": "EUR"},
            },
        ]
    with httpx.Client(base_url=stack.collector.url, timeout=10) as client:
        response = client.post("/v1/batch", json={"writeKey": WRITE_KEY, "batch": batch})
    assert response.status_code == 200, response.text
    wait_until(
        lambda: outbox_size(stack.data_dir) == BUYERS,
        timeout=DELIVERY_TIMEOUT,
        what="an alert for every buyer",
    )

    dashboard.log_in()
    dashboard.view("alerts", "#alerts-older")
    page = dashboard.page
    rows = page.locator("#alerts tbody tr")
    assert rows.count() == PAGE
    assert page.inner_text(".seg button[data-value=all] .count") == str(BUYERS)
    assert page.inner_text("#alerts-shown") == f"200 of {BUYERS} shown"
    assert "buyer0@example.com" not in page.inner_text("#alerts")  # the oldest is on page two

    page.click("#alerts-older")
    # A locator's wait, not wait_for_function: a string to evaluate is refused by the page's CSP
    # whenever the first check does not already hold.
    rows.nth(BUYERS - 1).wait_for()
    assert rows.count() == BUYERS
    assert page.locator("#alerts-older").count() == 0  # nothing older is left
    ids = [int(i) for i in rows.evaluate_all("rows => rows.map((r) => r.dataset.id)")]
    assert ids == sorted(set(ids), reverse=True)  # newest first, nobody twice
    assert "buyer0@example.com" in rows.nth(BUYERS - 1).inner_text()

    # The view's refresh keeps what Load older read.
    page.wait_for_timeout(3500)
    assert rows.count() == BUYERS
    dashboard.shoot("alerts-paged")
