"""Generated sessions as Segment messages, and the ground truth to score Bond against."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bond.simulate.households import EVENT_SPACING_MS, Household, SimSession

PRICES = {"electronics": 199.0, "gaming": 59.0, "home": 45.0, "kitchen": 35.0, "garden": 25.0}


@dataclass
class Truth:
    """Who really did what: sessions by (browser, first event time), orders by order id."""

    households: dict[str, Household] = field(default_factory=dict)
    sessions: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    orders: dict[str, tuple[str, int, int | None]] = field(default_factory=dict)


def truth_of(households: Sequence[Household]) -> Truth:
    truth = Truth()
    for household in households:
        truth.households[household.account] = household
        for s in household.sessions:
            truth.sessions[(s.device.anonymous_id, s.start_ms)] = (household.account, s.member)
            if s.order_id:
                truth.orders[s.order_id] = (household.account, s.member, s.co_member)
    return truth


def messages(households: Sequence[Household]) -> Iterator[dict[str, Any]]:
    """Every household's messages merged into one stream in time order, as sites send them."""
    streams = [_household_messages(h) for h in households]
    keyed = (((m["_ms"], i, m) for m in stream) for i, stream in enumerate(streams))
    for _, _, message in heapq.merge(*keyed, key=lambda x: (x[0], x[1])):
        message.pop("_ms")
        yield message


def _household_messages(household: Household) -> Iterator[dict[str, Any]]:
    logged_in: set[str] = set()
    counter = 0
    for session in household.sessions:
        for message in _session_messages(
            household, session, login=session.device.anonymous_id not in logged_in
        ):
            counter += 1
            message["messageId"] = f"{household.account}-{counter}"
            yield message
        logged_in.add(session.device.anonymous_id)


def _session_messages(
    household: Household, session: SimSession, *, login: bool
) -> Iterator[dict[str, Any]]:
    device = session.device
    context = {
        "timezone": household.timezone,
        "userAgent": device.user_agent,
        "library": {"name": "bond-simulate", "version": "1"},
    }
    at = session.start_ms

    def message(kind: str, **fields: Any) -> dict[str, Any]:
        nonlocal at
        body = {
            "type": kind,
            "anonymousId": device.anonymous_id,
            "userId": household.account,
            "timestamp": _iso(at),
            "context": context,
            "_ms": at,
            **fields,
        }
        at += EVENT_SPACING_MS
        return body

    if login:
        yield message("identify", traits={"plan": "family"})
    yield message("page", name="Home", properties={"path": "/"})
    for n, category in enumerate(session.views):
        yield message(
            "track",
            event="Product Viewed",
            properties={"product_id": f"{category}-{n}", "category": category},
        )
    if session.order_id:
        products = [
            {"product_id": f"{c}-{n}", "category": c, "price": PRICES.get(c, 20.0)}
            for n, c in enumerate(session.order_categories)
        ]
        yield message(
            "track",
            event="Order Completed",
            properties={
                "order_id": session.order_id,
                "products": products,
                "revenue": sum(p["price"] for p in products),
                "currency": "USD",
            },
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
