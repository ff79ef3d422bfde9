"""Signed identities in real Chromium: a spoofer gains nothing, a signed login stitches.

The stack's default source requires signed identities (BOND_SIGNING_SECRET and
BOND_REQUIRE_SIGNED_IDENTIFY, set in the environment every process of the stack inherits), and
the worker has an alert rule for a verified person's big checkout; its alerts are read from the
outbox (Discord delivery itself is covered by test_storefront_alerts.py). The test plays the
site's server: it computes each signature with the secret and hands it to `bond.identify`, as a
page rendered by that server would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Shopper, Stack, label
from tests.signing_support import sign as signature_of

Shoppers = Callable[..., Shopper]
SECRET = "fern-and-kiln-signing-secret"
VICTIM = "victim@example.com"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("BOND_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("BOND_REQUIRE_SIGNED_IDENTIFY", "true")
    rules = tmp_path / "bond.toml"
    rules.write_text(
        '[[alerts.rules]]\nname = "verified big checkout"\nkind = "identified"\n'
        "threshold = 50\nrequire_verified = true\n"
    )
    running = Stack(tmp_path / "bond-data", worker_env={"BOND_CONFIG": str(rules)})
    yield running
    running.stop()


def sign(value: str) -> str:
    return signature_of(value, SECRET)


def alerts(stack: Stack) -> list[tuple[str, int]]:
    return [(a["rule"], a["person_id"]) for a in stack.api.get("/alerts").json()["alerts"]]


def identify(visitor: Shopper, user_id: str | None, traits: dict[str, Any], signature: str) -> None:
    visitor.page.evaluate(
        "([userId, traits, signature]) => bond.identify(userId, traits, {signature})",
        [user_id, traits, signature],
    )


def anonymous_id(visitor: Shopper) -> str:
    return str(visitor.page.evaluate("localStorage.bond_id"))


def anonymous_timeline(stack: Stack, anon: str, last: str) -> list[str]:
    """The labels of the person owning browser `anon`, once its events up to `last` arrived."""
    seen: dict[str, list[str]] = {}

    def arrived() -> bool:
        response = stack.api.get("/persons", anonymous_id=anon)
        if response.status_code != 200:
            return False
        seen["labels"] = [label(e) for e in stack.timeline(response.json()["id"])]
        return last in seen["labels"]

    wait_until(arrived, timeout=DELIVERY_TIMEOUT, interval=0.1, what=f"browser {anon}'s events")
    return seen["labels"]


def identity_refusals(stack: Stack) -> list[str]:
    with closing(sqlite3.connect(f"file:{stack.data_dir / 'events.db'}?mode=ro", uri=True)) as conn:
        return [reason for (reason,) in conn.execute("SELECT reason FROM rejected ORDER BY id")]


def test_an_unsigned_identify_as_someone_elses_email_gains_nothing(
    stack: Stack, shopper: Shoppers
) -> None:
    victim = shopper()
    victim.visit("")
    victim.view("indigo-bowl")
    identify(victim, None, {"email": VICTIM}, sign(VICTIM))
    victim.view("fig-candle")
    history = [
        "page /",
        "page /product.html?id=indigo-bowl",
        "Product Viewed indigo-bowl",
        f"identify {VICTIM}",
        "page /product.html?id=fig-candle",
        "Product Viewed fig-candle",
    ]
    person = stack.wait_for_timeline(VICTIM, history)
    assert person["verified"] is True

    spoofer = shopper()
    spoofer.visit("")
    spoofer.view("fig-candle")
    spoofer.add_to_cart()
    identify(spoofer, None, {"email": VICTIM}, "0" * 64)
    spoofer.start_checkout()
    spoofer.place_order(VICTIM)  # the checkout form's email: identified by the SDK, unsigned

    spoofed = anonymous_timeline(stack, anonymous_id(spoofer), "page /thanks.html")

    # Both identifies were kept as anonymous events of the spoofer's own browser.
    assert spoofed.count("identify None") == 2 and "Order Completed 34 EUR" in spoofed
    refusals = identity_refusals(stack)
    assert len(refusals) == 2
    assert "matches neither the userId nor the email" in refusals[0]
    assert "carries no signature" in refusals[1]
    spoofer_person = stack.api.get("/persons", anonymous_id=anonymous_id(spoofer)).json()
    assert spoofer_person["id"] != person["id"] and spoofer_person["identified"] is False
    # The victim's person, history and alerts are exactly what they were.
    after = stack.wait_for_timeline(VICTIM, history)
    assert after["id"] == person["id"] and after["anonymous_ids"] == [anonymous_id(victim)]
    assert alerts(stack) == []


def test_a_signed_login_stitches_the_visit_and_signs_every_later_event(
    stack: Stack, shopper: Shoppers
) -> None:
    customer = shopper()
    customer.visit("")
    customer.view("indigo-bowl")
    customer.add_to_cart()
    customer.view("fig-candle")
    customer.add_to_cart()
    identify(customer, "cust-17", {"name": "Kim"}, sign("cust-17"))
    customer.start_checkout()
    customer.place_order("kim@example.com")

    labels = anonymous_timeline(stack, anonymous_id(customer), "page /thanks.html")
    found = stack.api.get("/persons", user_id="cust-17").json()
    assert found["verified"] is True and found["anonymous_ids"] == [anonymous_id(customer)]
    # The person's timeline is the whole visit, the anonymous browsing before the login included.
    logged = stack.logged()
    assert labels == [label(e) for e in logged] and "Order Completed 66 EUR" in labels
    assert labels.index("Product Added fig-candle") < labels.index("identify None")
    assert alerts(stack) == [("verified big checkout", found["id"])]
    # The SDK sent the stored signature with every later event; none of it was stored.
    after_login = logged[[e["type"] for e in logged].index("identify") :]
    assert {e["context"].get("bond", {}).get("verified") for e in after_login} == {"user_id"}
    assert sign("cust-17") not in orjson.dumps(logged).decode()
    # The email typed at checkout was not what the login signed, so it did not join the person.
    assert found["emails"] == []
    assert "the signature vouches for the userId only" in identity_refusals(stack)[0]
