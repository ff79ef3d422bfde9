"""What each kind of alert says. Every value from a browser goes through `escape`.

Money is shown per currency, as the dashboard shows a person's totals ("300.00 EUR + 250.00
USD"), never as one sum of several currencies; an amount sent without a currency has no code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from engine.alerts.message import Message, escape, unescape
from engine.alerts.money import Amounts, Currency
from engine.alerts.person import Person

MAX_PROPERTIES = 10


def identified(rule: str, person: Person, at: int, *, currency: str | None = None) -> Message:
    """`currency` is the rule's: the value it weighed is shown in it."""
    fields = [
        ("Value", _value(person.value, currency)),
        ("Anonymous visits", str(person.anonymous_visits)),
        ("Page views", str(person.page_views)),
        ("First seen", _when(person.first_seen)),
    ]
    if person.cart_value:
        fields.append(("Cart", _amounts(person.cart_value)))
    if person.lifetime_value:
        fields.append(("Lifetime value", _amounts(person.lifetime_value)))
    if person.top_products:
        fields.append(("Top products", ", ".join(escape(p) for p in person.top_products)))
    if person.top_categories:
        fields.append(("Top categories", ", ".join(escape(c) for c in person.top_categories)))
    return Message(
        "identified",
        title=f"{_who(person)} identified",
        description=_steps(person),
        fields=fields,
        footer=f"rule: {rule} · person {person.id}",
        timestamp_iso=_iso(at),
    )


def returned(rule: str, person: Person, away_ms: int, at: int) -> Message:
    fields = [("Away for", _duration(away_ms)), ("First seen", _when(person.first_seen))]
    if person.lifetime_value:
        fields.append(("Lifetime value", _amounts(person.lifetime_value)))
    return Message(
        "returned",
        title=f"{_who(person)} is back",
        description=_steps(person),
        fields=fields,
        footer=f"rule: {rule} · person {person.id}",
        timestamp_iso=_iso(at),
    )


def event(rule: str, person: Person, name: str, properties: dict[str, Any], at: int) -> Message:
    shown = list(properties.items())[:MAX_PROPERTIES]
    return Message(
        "event",
        title=f"{escape(name)} by {_who(person)}",
        description=_steps(person),
        fields=[(escape(key), escape(_plain(value))) for key, value in shown],
        footer=f"rule: {rule} · person {person.id}",
        timestamp_iso=_iso(at),
    )


def sample() -> Message:
    return Message(
        "test",
        title="Bond alerts are connected",
        description="This is a test message from `bond alerts test`. Real alerts look like this.",
        fields=[("Value", _money(640, "EUR")), ("Anonymous visits", "3"), ("Page views", "17")],
        footer="rule: test",
    )


def summary(message: Message) -> str:
    """One plain line for the read API and the CLI: the title as Discord shows it."""
    return unescape(message.title)


def _who(person: Person) -> str:
    email = person.email
    if person.name and email:
        return f"{escape(person.name)} ({escape(email)})"
    return escape(person.name or email or f"person {person.id}")


def _steps(person: Person) -> str:
    if not person.last_steps:
        return ""
    return "Last steps:\n" + "\n".join(f"• {escape(step)}" for step in person.last_steps)


def _plain(value: Any) -> str:
    # JSON, as the dashboard shows a property that is not a string (Python's repr would say
    # `{'a': 1}` and `True` where the dashboard says `{"a":1}` and `true`).
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return repr(value)


def _value(value: Amounts, currency: str | None) -> str:
    """The value a rule weighed: in its currency, or in each currency if it names none."""
    return _amounts(value) if currency is None else _money(value.in_currency(currency), currency)


def _amounts(amounts: Amounts) -> str:
    shown = [_money(amount, currency) for currency, amount in amounts.ranked()]
    return " + ".join(shown) or _money(0.0, None)


def _money(amount: float, currency: Currency) -> str:
    # The code is one the engine read as three ASCII letters: nothing in it to escape.
    return f"{amount:,.2f} {currency}" if currency else f"{amount:,.2f}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _when(ms: int | None) -> str:
    return (
        "unknown"
        if ms is None
        else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    )


def _duration(ms: int) -> str:
    hours = ms / 3_600_000
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
