"""A real `bond demo`, as a newcomer runs it, in Chromium: what it prints says where the admin
token is kept and how to connect Discord, a purchase in its shop raises an alert from its
sample rules, the alerts view says why they are not sent, and every time on the dashboard
gives the UTC time, as the logs do, when hovered."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from bond.bench.processes import free_port
from conftest import ROOT, wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Shopper
from e2e.test_dashboard import Dashboard

EMAIL = "ada@example.com"
UTC_TITLE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


@dataclass
class Demo:
    data_dir: Path
    printed: str
    shop_url: str
    dashboard_url: str
    api_url: str

    @property
    def token(self) -> str:
        return (self.data_dir / "demo-admin-token").read_text().strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`bond demo` with nothing configured: no token, no bond.toml, no webhook."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    ports = {name: free_port() for name in ("port", "api-port", "shop-port")}
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("BOND_ADMIN_TOKEN", "BOND_CONFIG", "BOND_DISCORD_WEBHOOK_URL")
    }
    out = data_dir.parent / "stdout"
    with out.open("wb") as stdout, (data_dir.parent / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bond.cli", "--data-dir", str(data_dir), "demo"]
            + [f"--{name}={port}" for name, port in ports.items()],
            env=env,
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until(lambda: "Press Ctrl-C" in out.read_text(), timeout=60, what="the demo")
        yield Demo(
            data_dir,
            out.read_text(),
            f"http://127.0.0.1:{ports['shop-port']}",
            f"http://127.0.0.1:{ports['api-port']}",
            f"http://127.0.0.1:{ports['api-port']}/api",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def purchase(demo: Demo, browser: Browser) -> None:
    """One purchase in the demo shop, as a shopper in Chromium makes it, and its alert."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    visitor = Shopper(context, demo.shop_url)
    visitor.view("moss-teapot")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order(EMAIL)
    context.close()
    assert not visitor.errors
    wait_until(lambda: len(alerts(demo)) > 0, timeout=DELIVERY_TIMEOUT, what="the purchase's alert")


def alerts(demo: Demo) -> list[dict[str, object]]:
    response = httpx.get(
        f"{demo.api_url}/alerts", headers={"Authorization": f"Bearer {demo.token}"}, timeout=5
    )
    response.raise_for_status()
    found: list[dict[str, object]] = response.json()["alerts"]
    return found


@pytest.fixture
def dashboard(browser: Browser, demo: Demo) -> Iterator[Dashboard]:
    tab = Dashboard(browser, demo.dashboard_url)
    tab.log_in(demo.token)
    yield tab
    tab.close()
    assert not tab.problems, tab.problems


def test_the_demo_says_where_its_token_is_and_how_to_connect_discord(demo: Demo) -> None:
    lines = {line.split()[0]: line for line in demo.printed.splitlines()[1:] if line.strip()}
    token_file = str(demo.data_dir.resolve() / "demo-admin-token")
    assert token_file in lines["dashboard"], demo.printed
    assert "log in with the admin token" in lines["dashboard"]
    assert "BOND_DISCORD_WEBHOOK_URL" in lines["alerts"]
    for text in (demo.printed, *(p.read_text() for p in (demo.data_dir / "logs").iterdir())):
        assert demo.token not in text


def test_a_demo_purchase_shows_an_alert_that_says_no_webhook_is_set(
    demo: Demo, purchase: None, dashboard: Dashboard
) -> None:
    dashboard.view("alerts", "#alerts tbody tr")
    page = dashboard.page
    rows = page.locator("#alerts tbody tr")
    assert "demo: buyer identified" in rows.all_inner_texts()[-1]
    assert EMAIL in rows.all_inner_texts()[-1]
    assert "No webhook configured" in page.inner_text("#alerts-webhook")
    assert "BOND_DISCORD_WEBHOOK_URL" in page.inner_text("#alerts-webhook")
    for n in range(rows.count()):
        assert rows.nth(n).get_attribute("data-state") == "pending"
        assert "no webhook configured" in rows.nth(n).inner_text()
    dashboard.shoot("demo-alerts")


def test_every_time_on_the_dashboard_gives_utc_when_hovered(
    demo: Demo, purchase: None, dashboard: Dashboard
) -> None:
    created = min(int(str(a["created_at"])) for a in alerts(demo))
    expected = datetime.fromtimestamp(created / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    dashboard.view("alerts", "#alerts tbody tr")
    cell = dashboard.page.locator("#alerts tbody tr").last.locator(".time")
    assert (cell.get_attribute("title") or "").endswith(expected)

    # Every view that shows times: each one's hover text ends in the same instant in UTC.
    views = {
        "live": "#main .time",
        "stitches": "#main .time",
        "people": "#main .feed-item .time",
    }
    for route, ready in views.items():
        dashboard.view(route, ready)
        titles = dashboard.page.eval_on_selector_all(
            "#main .time", "cells => cells.map((c) => c.getAttribute('title'))"
        )
        assert titles and all(UTC_TITLE.search(t or "") for t in titles), (route, titles)
    dashboard.page.click("#main .feed-item a.button")
    dashboard.page.wait_for_selector("#main .tl-when")
    titles = dashboard.page.evaluate(
        """() => [...document.querySelectorAll('#main .tl-when, #main .time'),
            ...[...document.querySelectorAll('#main .fact')]
                .filter((f) => /seen/.test(f.querySelector('.fact-label').textContent))
                .map((f) => f.querySelector('.fact-value span'))]
            .map((e) => e.getAttribute('title'))"""
    )
    assert len(titles) >= 4, titles
    assert [t for t in titles if not UTC_TITLE.search(t or "")] == []
    dashboard.shoot("demo-person-times")
