"""The demo shop remembers who its customer is and keeps its categories in reach, in Chromium:
a checkout's delivery name does not replace the name a customer signed up with, and a phone
reaches every category from any page."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import ViewportSize

from e2e.conftest import Shopper
from e2e.test_storefront_phone import off_screen

Shoppers = Callable[..., Shopper]
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 900}


def both_widths(visitor: Shopper, name: str) -> None:
    visitor.page.set_viewport_size(PHONE)
    visitor.screenshot(f"{name}-390")
    visitor.page.set_viewport_size(LAPTOP)
    visitor.screenshot(f"{name}-1280")


def test_the_checkout_name_does_not_replace_the_sign_up_name(shopper: Shoppers) -> None:
    visitor = shopper()
    visitor.sign_up("sam@example.com")  # as "Sam Lee"
    assert visitor.page.inner_text(".hello") == "Hi, Sam Lee"
    visitor.view("speckled-mug")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order("sam@example.com")  # delivered to "Alex Morgan"
    assert visitor.page.inner_text(".hello") == "Hi, Sam Lee"
    both_widths(visitor, "storefront-greeting-after-checkout")

    # A guest's checkout name is all the shop knows: that one greets them.
    guest = shopper()
    guest.view("bud-vase")
    guest.add_to_cart()
    guest.start_checkout()
    guest.place_order("alex@example.com")
    assert guest.page.inner_text(".hello") == "Hi, Alex Morgan"


def test_a_phone_reaches_every_category_from_any_page(shopper: Shoppers) -> None:
    visitor = shopper(viewport=PHONE)
    visitor.view("speckled-mug")
    links = visitor.page.locator("#site-header .cats a")
    names = links.all_inner_texts()
    assert names == ["All", "Ceramics", "Plants", "Stationery", "Candles"]
    for n in range(links.count()):
        assert links.nth(n).is_visible(), names[n]
    assert off_screen(visitor) == []
    both_widths(visitor, "storefront-categories")

    visitor.page.set_viewport_size(PHONE)
    visitor.page.click("#site-header .cats a[href='catalogue.html?category=plants']")
    visitor.page.wait_for_url("**/catalogue.html?category=plants")
    visitor.page.wait_for_function("document.body.classList.contains('ready')")
    assert visitor.page.inner_text("#catalogue-title") == "Plants"
