"""People: the list, who an id is, search, a person's page, their stitched timeline and their
orders.

Everything is read through `IdentityReader` (and the alert module's notion of an order's value,
so the dashboard and the Discord alerts agree), never from identity columns directly.
"""

from __future__ import annotations

from typing import Any

from bond.errors import BadRequest, NotFound
from engine.alerts.money import currency_code
from engine.alerts.person import order_events, order_value
from engine.dashboard.households import member_count
from engine.dashboard.labels import label_of
from engine.dashboard.stitches import labelled
from engine.timeline import ActiveCursor, Cursor, IdentityReader, StitchRange
from engine.verification import is_verified


def people_page(reader: IdentityReader, limit: int, before: ActiveCursor | None) -> dict[str, Any]:
    """Identified people, most recently active first, each labelled as every list labels them;
    `next` continues the walk (see IdentityReader.people)."""
    page = reader.people(limit, before)
    people = [
        {**person, "label": label_of(person), "verified": is_verified(reader.conn, person["id"])}
        for person in page.people
    ]
    return {"people": people, "next": page.next.encode() if page.next else None}


def people_cursor(before: str | None) -> ActiveCursor | None:
    try:
        return ActiveCursor.decode(before) if before else None
    except ValueError:
        raise BadRequest("before must be the 'next' of a previous page of people") from None


def search(reader: IdentityReader, query: str) -> int:
    """The person an email, user id or anonymous id belongs to."""
    text = query.strip()
    if not text:
        raise BadRequest("type an email, a user id or an anonymous id")
    found = reader.find(email=text) or reader.find(user_id=text) or reader.find(anonymous_id=text)
    if found is None:
        raise NotFound("nobody has that email, user id or anonymous id")
    return found


def person_page(reader: IdentityReader, person_id: int) -> dict[str, Any]:
    profile = reader.profile(person_id)
    if profile is None:
        raise NotFound(f"no person {person_id}")
    changes = labelled(reader, reader.identity_events(20, person_id=person_id))
    ranges = reader.stitch_ranges(person_id) if profile["identified"] else []
    return {
        **profile,
        "label": label_of(profile),
        "identity_events": changes,
        "household_members": member_count(reader, person_id),
        # Per anonymous browser range: when it was identified (None: all of it came stitched).
        "browsers": [
            {
                "anonymous_id": r.anonymous_id,
                "identified_at": r.identified_from.ts if r.identified_from else None,
            }
            for r in ranges
        ],
    }


def timeline_page(
    reader: IdentityReader, person_id: int, limit: int, before: Cursor | None
) -> dict[str, Any]:
    """A newest-first page of the stitched timeline; each event says whether it was stitched."""
    profile = reader.profile(person_id)
    if profile is None:
        raise NotFound(f"no person {person_id}")
    page = reader.timeline(person_id, limit, before)
    ranges: dict[str, list[StitchRange]] = {}
    for found in reader.stitch_ranges(person_id) if profile["identified"] else []:
        ranges.setdefault(found.anonymous_id, []).append(found)
    for event in page.events:
        # Only its own browser's ranges: a login shared by thousands of browsers has thousands.
        event["stitched"] = stitched(event, ranges.get(event["anonymous_id"], []))
    return {
        "person_id": person_id,
        "identified": profile["identified"],
        "event_count": profile["event_count"],
        "events": page.events,
        "next": page.next.encode() if page.next else None,
    }


def stitched(event: dict[str, Any], ranges: list[StitchRange]) -> bool:
    """Whether an identified person's event happened while its browser was still anonymous."""
    anonymous_id, at = event["anonymous_id"], Cursor(event["timestamp"], event["seq"])
    for r in ranges:
        if r.anonymous_id == anonymous_id and r.start_ts <= at.ts < r.end_ts:
            return r.identified_from is None or at < r.identified_from
    return False


def orders(reader: IdentityReader, person_id: int) -> dict[str, Any]:
    """The person's orders over their whole history, newest first, and their total: the ones
    their lifetime value counts (see `order_events`). `complete` is false only past its bound,
    and `scanned` then says how many newest orders are shown."""
    events, complete = order_events(reader, person_id)
    found: list[dict[str, Any]] = []
    for event in events:
        value = order_value(event)
        if value is not None:
            props = event.get("properties") or {}
            found.append(
                {
                    "seq": event["seq"],
                    "timestamp": event["timestamp"],
                    "order_id": props.get("order_id"),
                    "value": value,
                    "currency": currency_code(props.get("currency")),
                    "products": _product_names(props.get("products")),
                }
            )
    return {
        "person_id": person_id,
        "orders": found,
        "totals": _totals(found),
        "complete": complete,
        "scanned": len(events),
    }


def _totals(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the orders add up to, one sum per currency (largest first): euros and dollars
    added together would be a number in neither."""
    sums: dict[str | None, float] = {}
    for order in orders:
        sums[order["currency"]] = sums.get(order["currency"], 0.0) + order["value"]
    ranked = sorted(sums.items(), key=lambda item: -item[1])
    return [{"currency": currency, "value": round(value, 2)} for currency, value in ranked]


def _product_names(products: Any) -> list[str]:
    if not isinstance(products, list):
        return []
    names = (p.get("name") or p.get("product_id") for p in products if isinstance(p, dict))
    return [str(n) for n in names if n]
