"""The whole stack for the storefront tests, and a shopper driving the demo shop in Chromium.

Each test gets its own collector, worker, read API and storefront on free ports with a fresh
data directory, so what a test reads back is exactly what its visitors did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from bond.demo import ShopServer
from conftest import (
    ROOT,
    WRITE_KEY,
    Collector,
    ReadApi,
    Worker,
    start_together,
    stop_together,
    wait_until,
)

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
# Generous: a collector restart makes the SDK back off for up to a few seconds.
DELIVERY_TIMEOUT = 45.0

Event = dict[str, Any]


class Stack:
    def __init__(
        self,
        data_dir: Path,
        worker_env: dict[str, str | None] | None = None,
        api_env: dict[str, str | None] | None = None,
        collector_port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.collector = Collector(data_dir, collector_port)
        self.worker = Worker(data_dir, worker_env)
        self.api = ReadApi(data_dir, api_env)
        start_together(self.collector, self.worker, self.api)
        self.shop = ShopServer(collector_url=self.collector.url, write_key=WRITE_KEY).start()

    def stop(self) -> None:
        self.shop.stop()
        stop_together(self.api, self.worker, self.collector)

    def logged(self) -> list[Event]:
        """Every event in the collector's log, oldest first (the bodies as stored)."""
        uri = f"file:{self.data_dir / 'events.db'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            rows = conn.execute("SELECT body FROM events ORDER BY seq").fetchall()
        return [orjson.loads(body) for (body,) in rows]

    def person(self, email: str) -> Event | None:
        response = self.api.get("/persons", email=email)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        person: Event = response.json()
        return person

    def timeline(self, person_id: int) -> list[Event]:
        """The person's whole stitched timeline, oldest first."""
        events: list[Event] = []
        params = {"limit": "500"}
        while True:
            page = self.api.get(f"/persons/{person_id}/timeline", **params).json()
            events += page["events"]
            if not page["next"]:
                return events[::-1]
            params["before"] = page["next"]

    def wait_for_timeline(self, email: str, expected: list[str]) -> Event:
        """Wait until `email`'s person has exactly `expected` (see `label`); return the person."""
        seen: dict[str, Any] = {}

        def arrived() -> bool:
            person = self.person(email)
            seen["labels"] = [label(e) for e in self.timeline(person["id"])] if person else None
            seen["person"] = person
            return seen["labels"] == expected

        try:
            wait_until(arrived, timeout=DELIVERY_TIMEOUT, interval=0.1, what=f"{email}'s timeline")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nexpected: {expected}\nlast seen: {seen.get('labels')}"
            ) from None
        person: Event = seen["person"]
        return person


def label(event: Event) -> str:
    """A short readable name for a timeline event, so a whole history compares as one list."""
    props = event.get("properties") or {}
    if event["type"] == "page":
        return f"page {props.get('path')}{props.get('search') or ''}"
    if event["type"] == "identify":
        return f"identify {(event.get('traits') or {}).get('email')}"
    if event["event"] == "Order Completed":
        return f"Order Completed {props.get('value')} {props.get('currency')}"
    if "product_id" in props:
        return f"{event['event']} {props['product_id']}"
    return str(event["event"])


class Shopper:
    """One visitor in one browser context, doing what people do in the demo shop."""

    def __init__(self, context: BrowserContext, shop_url: str) -> None:
        self.context = context
        self.shop_url = shop_url
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _loaded(self) -> None:
        # The shop has rendered and the SDK has replaced the snippet's stub.
        self.page.wait_for_function("document.body.classList.contains('ready') && bond.version")

    def visit(self, path: str) -> None:
        self.page.goto(f"{self.shop_url}/{path}")
        self._loaded()

    def view(self, product_id: str) -> None:
        self.visit(f"product.html?id={product_id}")

    def add_to_cart(self) -> None:
        before = self.page.inner_text("#cart-count")
        self.page.click("#add-to-cart")
        self.page.wait_for_function(
            "before => document.querySelector('#cart-count').textContent != before", arg=before
        )

    def start_checkout(self) -> None:
        self.visit("cart.html")
        self.page.click("#checkout")
        self.page.wait_for_url("**/checkout.html")
        self._loaded()

    def fill_checkout(self, email: str) -> None:
        self.page.fill("#email", email)
        self.page.fill("#name", "Alex Morgan")
        self.page.fill("#address", "12 Harbour Lane")
        self.page.fill("#city", "Cork")
        self.page.fill("#postcode", "T12 AB34")

    def place_order(self, email: str) -> None:
        self.fill_checkout(email)
        self.page.click("#place-order")
        self.page.wait_for_url("**/thanks.html")
        self._loaded()

    def sign_up(self, email: str) -> None:
        self.visit("signup.html")
        self.page.fill("#name", "Sam Lee")
        self.page.fill("#email", email)
        self.page.fill("#password", "correct horse battery")
        self.page.click("#signup")
        self.page.wait_for_url("**/index.html")
        self._loaded()

    def log_in(self, email: str) -> None:
        self.visit("login.html")
        self.page.fill("#email", email)
        self.page.fill("#password", "correct horse battery")
        self.page.click("#login")
        self.page.wait_for_url("**/index.html")
        self._loaded()

    def log_out(self) -> None:
        self.page.click("#logout")
        self.page.wait_for_url("**/index.html")
        self._loaded()
        self.page.wait_for_selector("a[href='login.html']")

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path / "bond-data")
    yield running
    running.stop()


@pytest.fixture
def shopper(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Shopper]]:
    """Makes visitors, each in a new browser context; their last page is saved as a screenshot
    under test-artifacts/e2e/ (named after the test) and page errors fail the test."""
    made: list[Shopper] = []

    def make(**context_options: Any) -> Shopper:
        options = {"viewport": {"width": 1280, "height": 900}, **context_options}
        context = browser.new_context(**options)
        made.append(Shopper(context, stack.shop.url))
        return made[-1]

    yield make
    for n, visitor in enumerate(made):
        suffix = f"-{n + 1}" if len(made) > 1 else ""
        visitor.screenshot(f"{request.node.name}{suffix}")
        visitor.context.close()
    errors = [error for visitor in made for error in visitor.errors]
    assert not errors, f"the shop threw: {errors}"
