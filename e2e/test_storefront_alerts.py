"""Sales hears about a big checkout on Discord: once, with the history that led to it.

The stack's worker runs with an `identified` rule and a webhook pointing at a local Discord
stand-in (a real HTTP server), so the whole path runs for real: storefront, SDK, collector,
worker, outbox, sender.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Shopper, Stack
from engine.alerts.fake_discord import FakeDiscord

Shoppers = Callable[..., Shopper]
THRESHOLD_EUR = 50


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    fake = FakeDiscord().start()
    yield fake
    fake.stop()


@pytest.fixture
def stack(tmp_path: Path, discord: FakeDiscord) -> Iterator[Stack]:
    config = tmp_path / "bond.toml"
    config.write_text(
        f'[alerts]\nwebhook_url = "{discord.url}"\n'
        f'[[alerts.rules]]\nname = "big checkout"\nkind = "identified"\n'
        f"threshold = {THRESHOLD_EUR}\n"
    )
    running = Stack(tmp_path / "bond-data", worker_env={"BOND_CONFIG": str(config)})
    yield running
    running.stop()


def test_a_big_checkout_alerts_sales_exactly_once_with_the_stitched_history(
    stack: Stack, shopper: Shoppers, discord: FakeDiscord
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.view("indigo-bowl")
    visitor.add_to_cart()
    visitor.view("fig-candle")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order("grace.hopper@example.com")

    person = stack.wait_for_timeline(
        "grace.hopper@example.com",
        [
            "page /",
            "page /product.html?id=indigo-bowl",
            "Product Viewed indigo-bowl",
            "Product Added indigo-bowl",
            "page /product.html?id=fig-candle",
            "Product Viewed fig-candle",
            "Product Added fig-candle",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify grace.hopper@example.com",
            "Order Completed 66 EUR",
            "page /thanks.html",
        ],
    )
    wait_until(lambda: discord.delivered, timeout=DELIVERY_TIMEOUT, what="the Discord alert")

    # The worker has applied the whole visit, so every alert it caused is in the outbox now.
    alerts = stack.api.get("/alerts").json()["alerts"]
    assert [a["state"] for a in alerts] == ["sent"]
    assert len(discord.requests) == 1

    message = discord.delivered[0].body
    assert message["allowed_mentions"] == {"parse": []}
    embed = message["embeds"][0]
    assert embed["title"] == "grace.hopper@example.com identified"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    # The anonymous browsing before the email was typed is part of what sales sees.
    assert fields["Anonymous visits"] == "1"
    # The five views before the order; the thank-you page counts too when the worker applies it
    # in the same batch as the order.
    assert fields["Page views"] in ("5", "6")
    assert fields["Value"] == "66.00 EUR"
    assert fields["Top products"] == "Indigo Bowl, Fig & Cedar Candle"
    assert "Checkout Started" in embed["description"]
    assert f"person {person['id']}" in embed["footer"]["text"]
