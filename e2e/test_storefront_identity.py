"""Identity through the demo shop in Chromium: anonymous browsing that becomes a person at
checkout, a checkout that redirects away at once, one person on two devices, and two people on
one computer. Everything is read back from the read API, as an operator would."""

from __future__ import annotations

from collections.abc import Callable

from e2e.conftest import Shopper, Stack, label

Shoppers = Callable[..., Shopper]


def test_anonymous_browsing_belongs_to_the_person_who_checks_out(
    stack: Stack, shopper: Shoppers
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.visit("catalogue.html?category=ceramics")
    visitor.view("speckled-mug")
    visitor.view("indigo-bowl")
    visitor.add_to_cart()
    visitor.visit("catalogue.html?category=candles")
    visitor.view("fig-candle")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order("Ada.Lovelace@Example.com")

    person = stack.wait_for_timeline(
        "ada.lovelace@example.com",
        [
            "page /",
            "page /catalogue.html?category=ceramics",
            "page /product.html?id=speckled-mug",
            "Product Viewed speckled-mug",
            "page /product.html?id=indigo-bowl",
            "Product Viewed indigo-bowl",
            "Product Added indigo-bowl",
            "page /catalogue.html?category=candles",
            "page /product.html?id=fig-candle",
            "Product Viewed fig-candle",
            "Product Added fig-candle",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify Ada.Lovelace@Example.com",
            "Order Completed 66 EUR",
            "page /thanks.html",
        ],
    )
    assert person["identified"] and person["emails"] == ["ada.lovelace@example.com"]
    assert len(person["anonymous_ids"]) == 1
    order = next(e for e in stack.timeline(person["id"]) if e["event"] == "Order Completed")
    assert [p["product_id"] for p in order["properties"]["products"]] == [
        "indigo-bowl",
        "fig-candle",
    ]


def test_the_checkout_redirect_still_delivers_the_identify_and_the_order(
    stack: Stack, shopper: Shoppers
) -> None:
    visitor = shopper()
    visitor.view("olive-tree")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.fill_checkout("grace@example.com")
    # The thank-you page cannot load the SDK: only what left as the checkout page unloaded counts.
    visitor.context.route("**/sdk/v1/bond.js", lambda route: route.abort())
    visitor.page.click("#place-order")
    visitor.page.wait_for_url("**/thanks.html")
    visitor.page.wait_for_selector("#order-id:not(:empty)")

    person = stack.wait_for_timeline(
        "grace@example.com",
        [
            "page /product.html?id=olive-tree",
            "Product Viewed olive-tree",
            "Product Added olive-tree",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify grace@example.com",
            "Order Completed 89 EUR",
        ],
    )
    assert person["emails"] == ["grace@example.com"]


def test_the_same_email_on_two_devices_is_one_person_with_both_histories(
    stack: Stack, shopper: Shoppers
) -> None:
    laptop, phone = shopper(), shopper(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.view("monstera")
    phone.log_in("lin@example.com")
    laptop.view("pilea")
    laptop.add_to_cart()
    laptop.start_checkout()
    laptop.place_order("lin@example.com")

    person = stack.wait_for_timeline(
        "lin@example.com",
        [
            "page /product.html?id=monstera",
            "Product Viewed monstera",
            "page /login.html",
            "identify lin@example.com",
            "page /index.html",
            "page /product.html?id=pilea",
            "Product Viewed pilea",
            "Product Added pilea",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify lin@example.com",
            "Order Completed 22 EUR",
            "page /thanks.html",
        ],
    )
    assert len(person["anonymous_ids"]) == 2
    browsers = {e["anonymous_id"] for e in stack.timeline(person["id"])}
    assert browsers == set(person["anonymous_ids"])


def test_two_people_on_one_computer_keep_their_own_histories(
    stack: Stack, shopper: Shoppers
) -> None:
    computer = shopper()
    computer.view("brass-pen")
    computer.add_to_cart()
    computer.start_checkout()
    computer.place_order("alice@example.com")
    computer.log_out()
    computer.view("sea-salt-candle")
    computer.sign_up("bob@example.com")

    alice = stack.wait_for_timeline(
        "alice@example.com",
        [
            "page /product.html?id=brass-pen",
            "Product Viewed brass-pen",
            "Product Added brass-pen",
            "page /cart.html",
            "Checkout Started",
            "page /checkout.html",
            "identify alice@example.com",
            "Order Completed 36 EUR",
            "page /thanks.html",
        ],
    )
    bob = stack.wait_for_timeline(
        "bob@example.com",
        [
            "page /index.html",
            "page /product.html?id=sea-salt-candle",
            "Product Viewed sea-salt-candle",
            "page /signup.html",
            "identify bob@example.com",
            "page /index.html",
        ],
    )
    assert alice["id"] != bob["id"]
    assert alice["emails"] == ["alice@example.com"] and bob["emails"] == ["bob@example.com"]
    assert set(alice["anonymous_ids"]).isdisjoint(bob["anonymous_ids"])
    assert all(label(e) != "page /index.html" for e in stack.timeline(alice["id"]))
