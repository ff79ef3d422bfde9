"""Delivery through the demo shop in Chromium when the network or the collector goes away:
what the visitor did arrives afterwards, every event exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from conftest import wait_until
from e2e.conftest import Shopper, Stack

Shoppers = Callable[..., Shopper]


def logged_labels(stack: Stack) -> Counter[str]:
    """What the collector stored, counted by kind, event and product."""
    counts: Counter[str] = Counter()
    for event in stack.logged():
        props = event.get("properties") or {}
        name = event.get("event") or props.get("path")
        counts[f"{event['type']} {name} {props.get('product_id', '')}".strip()] += 1
    return counts


def test_events_made_offline_arrive_once_when_back_online(stack: Stack, shopper: Shoppers) -> None:
    visitor = shopper()
    visitor.view("weekly-planner")
    wait_until(lambda: len(stack.logged()) == 2, timeout=15, what="the product view to arrive")

    visitor.context.set_offline(True)
    visitor.page.wait_for_function("!navigator.onLine")
    for _ in range(3):
        visitor.add_to_cart()
    visitor.page.evaluate("bond.track('Wishlist Opened', {})")
    assert len(stack.logged()) == 2

    visitor.context.set_offline(False)
    wait_until(lambda: len(stack.logged()) == 6, timeout=30, what="the offline events to arrive")
    visitor.start_checkout()
    visitor.place_order("offline@example.com")

    stack.wait_for_timeline(
        "offline@example.com",
        [
            "page /product.html?id=weekly-planner",
            "Product Viewed weekly-planner",
            "Product Added weekly-planner",
            "Product Added weekly-planner",
            "Product Added weekly-planner",
            "Wishlist Opened",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify offline@example.com",
            "Order Completed 63 EUR",
            "page /thanks.html",
        ],
    )
    logged = logged_labels(stack)
    assert logged["track Product Added weekly-planner"] == 3
    assert logged["track Wishlist Opened"] == 1
    assert len(stack.logged()) == 12


def test_the_retry_queue_delivers_everything_after_a_collector_restart(
    stack: Stack, shopper: Shoppers
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.view("bud-vase")
    wait_until(lambda: len(stack.logged()) == 3, timeout=15, what="the first pages to arrive")

    stack.collector.stop()
    visitor.view("moss-teapot")
    visitor.add_to_cart()
    visitor.visit("catalogue.html?category=ceramics")
    visitor.view("indigo-bowl")
    stack.collector.start()

    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order("restart@example.com")

    stack.wait_for_timeline(
        "restart@example.com",
        [
            "page /",
            "page /product.html?id=bud-vase",
            "Product Viewed bud-vase",
            "page /product.html?id=moss-teapot",
            "Product Viewed moss-teapot",
            "Product Added moss-teapot",
            "page /catalogue.html?category=ceramics",
            "page /product.html?id=indigo-bowl",
            "Product Viewed indigo-bowl",
            "Product Added indigo-bowl",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify restart@example.com",
            "Order Completed 100 EUR",
            "page /thanks.html",
        ],
    )
    assert len(stack.logged()) == 16
