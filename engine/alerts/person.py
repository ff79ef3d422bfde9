"""What an alert knows about a person: who they are, what they are worth, how they got here.

Read from the engine's state through its `IdentityReader`, so the stitched history (every linked
browser's anonymous past) is what the identity graph says it is. Values follow Segment's
e-commerce spec: an order's `total`, `revenue` or `value`; a cart from `Checkout Started` /
`Cart Viewed` or, failing those, the `Product Added` since the last order.

Only the newest `HISTORY_LIMIT` events are read for the cart, the last steps and the top
products, so those cost the same for a person with a very long history. Lifetime value counts
the person's orders over their whole history, read by name so that no other event is opened (or
a `lifetime_value` trait the site sends, when larger).

Every amount is kept in its own currency (see `money`): a cart, an order and a lifetime value are
each one amount per currency, never a sum across them.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any

from engine.alerts.money import Amounts, Currency, currency_code
from engine.schema import ORDER_EVENT
from engine.timeline import MAX_PAGE, Cursor, IdentityReader
from engine.verification import is_verified

HISTORY_LIMIT = 5000
# Orders read for a lifetime value or a person page: far more than any real customer places
# (an order a day for 27 years), so theirs are all counted, while an id that collects a whole
# shop's orders (one "guest" user id for every checkout) costs a bounded read. Past it, a
# lifetime value is a lower bound, which still reaches any threshold it should.
ORDER_LIMIT = 10_000
# Segment's and most analytics tools' session boundary: 30 minutes without an event.
SESSION_GAP_MS = 30 * 60 * 1000
LAST_STEPS = 5
TOP = 3

ORDER_EVENTS = frozenset({ORDER_EVENT})
CART_EVENTS = frozenset({"Checkout Started", "Cart Viewed"})
PRODUCT_EVENTS = frozenset({"Product Viewed", "Product Added", "Product Clicked"})


@dataclass(frozen=True)
class Person:
    id: int
    identified: bool
    verified: bool  # holds an identifier the site's server signed
    emails: tuple[str, ...]
    name: str | None
    first_seen: int | None
    anonymous_visits: int
    page_views: int
    cart_value: Amounts
    order_value: Amounts  # the latest order's
    lifetime_value: Amounts
    top_products: tuple[str, ...]
    top_categories: tuple[str, ...]
    last_steps: tuple[str, ...]

    @property
    def email(self) -> str | None:
        return self.emails[0] if self.emails else None

    @property
    def value(self) -> Amounts:
        """What the identified rule compares with its threshold: per currency, the largest."""
        return Amounts.largest(self.cart_value, self.order_value, self.lifetime_value)


def load_person(conn: sqlite3.Connection, person_id: int) -> Person | None:
    reader = IdentityReader(conn)
    profile = reader.profile(person_id)
    if profile is None:
        return None
    history = _history(reader, person_id)  # oldest first
    traits: dict[str, Any] = profile["traits"]
    newest_first = order_events(reader, person_id)[0]  # past ORDER_LIMIT, a lower bound
    orders = [order for e in newest_first if (order := _order(e)) is not None]
    products = Counter(p for e in history if (p := _product(e)))
    categories = Counter(c for e in history if (c := _category(e)))
    return Person(
        id=person_id,
        identified=profile["identified"],
        verified=is_verified(conn, person_id),
        emails=tuple(profile["emails"]),
        name=_name(traits),
        first_seen=profile["first_seen"],
        anonymous_visits=_anonymous_visits(history),
        page_views=sum(1 for e in history if e["type"] == "page"),
        cart_value=_cart_value(history),
        order_value=Amounts.total(orders[:1]),
        lifetime_value=_lifetime_value(orders, traits),
        top_products=tuple(p for p, _ in products.most_common(TOP)),
        top_categories=tuple(c for c, _ in categories.most_common(TOP)),
        last_steps=tuple(_step(e) for e in history[-LAST_STEPS:]),
    )


def previous_seen(conn: sqlite3.Connection, person_id: int, ts: int, seq: int) -> int | None:
    """The timestamp of the person's latest visit before (ts, seq), or None for a first visit:
    what the site's server sent for them meanwhile (a renewal) does not end their time away."""
    latest = IdentityReader(conn).latest_before(person_id, Cursor(ts, seq), browsers_only=True)
    return latest.ts if latest is not None else None


def order_events(reader: IdentityReader, person_id: int) -> tuple[list[dict[str, Any]], bool]:
    """The person's orders over their whole stitched history, newest first, at most ORDER_LIMIT
    of them; and whether that is all of them.

    The one list of a person's orders, for the alerts and the dashboard alike. Chosen by name in
    SQL (see IdentityReader.timeline): their other events are neither opened nor parsed.
    """
    events: list[dict[str, Any]] = []
    cursor: Cursor | None = None
    while True:
        limit = min(MAX_PAGE, ORDER_LIMIT - len(events))
        page = reader.timeline(person_id, limit, cursor, orders_only=True)
        events.extend(page.events)
        cursor = page.next
        if cursor is None or len(events) >= ORDER_LIMIT:
            return events, cursor is None


def _history(reader: IdentityReader, person_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: Cursor | None = None
    while len(events) < HISTORY_LIMIT:
        page = reader.timeline(person_id, MAX_PAGE, cursor)
        events.extend(page.events)
        if page.next is None:
            break
        cursor = page.next
    return events[:HISTORY_LIMIT][::-1]


def _anonymous_visits(history: list[dict[str, Any]]) -> int:
    """Sessions before the person's first identify: the visits sales did not know about."""
    visits, last_ts = 0, None
    for event in history:
        if event["type"] == "identify":
            break
        if last_ts is None or event["timestamp"] - last_ts >= SESSION_GAP_MS:
            visits += 1
        last_ts = event["timestamp"]
    return visits


def _cart_value(history: list[dict[str, Any]]) -> Amounts:
    cart: dict[Currency, float] = {}
    for event in history:
        name, props = event.get("event"), event.get("properties") or {}
        currency = currency_code(props.get("currency"))
        if name in ORDER_EVENTS:
            cart = {}
        elif name in CART_EVENTS:
            amount = _money(props) or _products_total(props.get("products"))
            if amount:
                cart = {currency: amount}
        elif name in ("Product Added", "Product Removed"):
            line = (number(props.get("price")) or 0.0) * (number(props.get("quantity")) or 1.0)
            line = line if name == "Product Added" else -line
            cart[currency] = max(cart.get(currency, 0.0) + line, 0.0)
    return Amounts(cart)


def _order(event: dict[str, Any]) -> tuple[float, Currency] | None:
    """An order's value and its currency; None if the event is no order."""
    value = order_value(event)
    if value is None:
        return None
    return value, currency_code((event.get("properties") or {}).get("currency"))


def _lifetime_value(orders: list[tuple[float, Currency]], traits: dict[str, Any]) -> Amounts:
    """The orders summed per currency; a `lifetime_value` trait, sent without a currency, is
    weighed against the orders sent without one."""
    summed = Amounts.total(orders)
    trait = number(traits.get("lifetime_value"))
    return summed if trait is None else Amounts.largest(summed, Amounts({None: trait}))


def order_value(event: dict[str, Any]) -> float | None:
    """An order's value (total, revenue or value; else its products summed); None if no order.

    The one reading of an order's worth, shared by the alert rules and the dashboard so the two
    never disagree about what a person spent.
    """
    if event.get("event") not in ORDER_EVENTS:
        return None
    props = event.get("properties") or {}
    return _money(props) or _products_total(props.get("products")) or 0.0


def _money(props: dict[str, Any]) -> float | None:
    for key in ("total", "revenue", "value"):
        amount = number(props.get(key))
        if amount is not None:
            return amount
    return None


def _products_total(products: Any) -> float | None:
    if not isinstance(products, list):
        return None
    total = 0.0
    for product in products:
        if isinstance(product, dict):
            price = number(product.get("price")) or 0.0
            total += price * (number(product.get("quantity")) or 1.0)
    return total or None


def _product(event: dict[str, Any]) -> str | None:
    if event.get("event") not in PRODUCT_EVENTS:
        return None
    props = event.get("properties") or {}
    name = props.get("name") or props.get("product_id") or props.get("sku")
    return str(name) if name else None


def _category(event: dict[str, Any]) -> str | None:
    if event.get("event") not in PRODUCT_EVENTS:
        return None
    category = (event.get("properties") or {}).get("category")
    return str(category) if category else None


def _step(event: dict[str, Any]) -> str:
    props = event.get("properties") or {}
    if event["type"] == "page":
        return f"viewed {props.get('path') or props.get('url') or props.get('name') or 'a page'}"
    if event["type"] == "identify":
        return "identified"
    product = _product(event)
    return f"{event.get('event') or event['type']}{f': {product}' if product else ''}"


def _name(traits: dict[str, Any]) -> str | None:
    name = traits.get("name")
    if not name:
        parts = [traits.get("firstName") or traits.get("first_name"), traits.get("lastName")]
        name = " ".join(str(p) for p in parts if p)
    return str(name) if name else None


def number(value: Any) -> float | None:
    """An amount from a browser's properties, or None: not a number, or not a finite one.

    "NaN" and "Infinity" parse as floats, and one of them summed into a lifetime value would
    make it NaN (shown blank, compared false against every threshold).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = float(value)
    except (ValueError, OverflowError):
        return None
    return amount if math.isfinite(amount) else None
