"""Do Not Track and Global Privacy Control in the demo shop, in Chromium: a whole visit up to
the order sends nothing, stores no id in the browser, and leaves nothing in Bond."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from e2e.conftest import Shopper, Stack

Shoppers = Callable[..., Shopper]

# Chromium sets these only from user settings; the visitor's browser here says them itself.
SIGNALS = {
    "dnt": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    "gpc": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_a_visitor_asking_not_to_be_tracked_sends_and_leaves_nothing(
    stack: Stack, shopper: Shoppers, signal: str
) -> None:
    visitor = shopper()
    visitor.context.add_init_script(SIGNALS[signal])
    sent: list[str] = []
    visitor.context.on(
        "request", lambda request: "/v1/batch" in request.url and sent.append(request.url)
    )

    visitor.visit("")
    visitor.view("linen-notebook")
    visitor.add_to_cart()
    visitor.start_checkout()
    visitor.place_order("private@example.com")
    visitor.log_out()
    # Leaving the shop is when anything still queued would go out by beacon.
    visitor.visit("catalogue.html")
    visitor.page.goto("about:blank")

    assert sent == []
    assert stack.logged() == []
    assert stack.person("private@example.com") is None
    assert all(c["name"] != "bond_id" for c in visitor.context.cookies())
    visitor.visit("")
    stored = visitor.page.evaluate("Object.entries(localStorage)")
    # The shop keeps its own cart and customer; the SDK keeps no id and no event.
    assert "bond_id" not in dict(stored)
    assert not [key for key, value in stored if "messageId" in value], stored
    assert not [key for key, _ in stored if key.startswith("bond")], stored
