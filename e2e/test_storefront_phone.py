"""The demo shop on phones in Chromium: at the narrowest common widths every page fits the
screen, and Log in, Sign up, Log out and the cart stay on it, signed out and signed in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from e2e.conftest import Shopper

Shoppers = Callable[..., Shopper]
PAGES = ("", "catalogue.html", "product.html?id=speckled-mug", "cart.html", "checkout.html")


def off_screen(visitor: Shopper) -> list[str]:
    """What sticks out past the right edge, which the phone would only show by scrolling."""
    found: list[str] = visitor.page.evaluate(
        """() => [document.documentElement, ...document.querySelectorAll('#site-header a')]
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5
                || e.scrollWidth > innerWidth)
            .map((e) => e.textContent.trim().slice(0, 20) || e.tagName)"""
    )
    return found


@pytest.mark.parametrize("width", [320, 390])
def test_every_page_and_its_header_fit_a_phone(shopper: Shoppers, width: int) -> None:
    visitor = shopper(viewport={"width": width, "height": 800})
    visitor.view("speckled-mug")
    visitor.add_to_cart()
    for path in PAGES:
        visitor.visit(path)
        assert visitor.page.is_visible("#site-header a[href='signup.html']")
        assert off_screen(visitor) == [], (width, path)

    visitor.sign_up(f"phone{width}@example.com")
    for path in PAGES:
        visitor.visit(path)
        assert visitor.page.is_visible("#logout")
        assert off_screen(visitor) == [], (width, path)
