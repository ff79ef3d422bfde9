"""Erasure seen from a real browser: a shopper who signed up is erased while their tab is still
open; the tab keeps browsing and its SDK keeps sending, and nothing of them comes back."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson

from conftest import wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Shopper, Stack

Shoppers = Callable[..., Shopper]
EMAIL = "erase.me@example.com"


def dropped(stack: Stack) -> int:
    """Events dropped as an erased person's, at ingest or by the worker."""
    metrics = httpx.get(f"{stack.collector.url}/metrics", timeout=5).text
    line = next(x for x in metrics.splitlines() if x.startswith("bond_events_suppressed_total"))
    by_worker = [
        orjson.loads(x)["events"]
        for x in stack.worker.log.splitlines()
        if '"suppressed_events_dropped"' in x
    ]
    return int(float(line.split()[-1])) + sum(by_worker)


def test_an_erased_shoppers_open_tab_keeps_sending_and_nothing_comes_back(
    stack: Stack, shopper: Shoppers
) -> None:
    visitor = shopper()
    visitor.visit("")
    visitor.view("linen-notebook")
    visitor.sign_up(EMAIL)
    person = wait_until(
        lambda: stack.person(EMAIL), timeout=DELIVERY_TIMEOUT, what="the shopper's person"
    )
    (anonymous_id,) = person["anonymous_ids"]

    asked = httpx.post(
        f"{stack.api.url}/erasures", json={"email": EMAIL}, headers=stack.api.headers, timeout=10
    )
    assert asked.status_code == 202
    wait_until(
        lambda: stack.api.get(f"/erasures/{asked.json()['id']}").json()["state"] == "done",
        timeout=30,
        what="the erasure",
    )
    assert [e for e in stack.logged() if e.get("anonymousId") == anonymous_id] == []

    # The same tab goes on shopping: its SDK still holds the anonymous id and the email. The
    # collector answers its beacons as accepted (so it does not retry them forever) and drops
    # them; any that came in before it re-read its list, the worker drops.
    visitor.view("speckled-mug")
    visitor.add_to_cart()
    visitor.visit("cart.html")
    visitor.visit("")
    # Page view and Product Viewed, Product Added, two more page views.
    wait_until(lambda: dropped(stack) >= 5, timeout=DELIVERY_TIMEOUT, what="the tab's events")
    # Whatever reached the log before the collector re-read its list, the worker dropped.
    wait_until(lambda: stack.logged() == [], timeout=10, what="an empty event log")

    assert stack.person(EMAIL) is None
    assert stack.api.get("/persons", anonymous_id=anonymous_id).status_code == 404
