"""Alert rules from bond.toml: compiled once at start, evaluated as the worker applies events.

- identified: a person became identified (or was recognised) and their cart, order or lifetime
  value reaches `threshold`;
- returned: a watched person (listed email, email domain, or lifetime value above a floor)
  starts a visit after at least `away_s` without events;
- event: an event with this name whose properties meet every `where` condition.

Amounts are read in the rule's `currency` (its own, else `[alerts] currency`) and never added
across currencies; an event rule's conditions on amounts hold only for events in that currency.
A rule with no currency reads its amounts in each currency on its own (see `money.Amounts`).

Each rule has a per-person cooldown, kept in `alert_cooldowns` and written in the worker's
transaction like the alert itself, so one browsing spree is one alert even across batches.
Times are event times, so a backlog applied at once is judged as it happened.
"""

from __future__ import annotations

import operator
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bond.config import AlertRule
from bond.errors import ConfigError
from engine.alerts.money import AMOUNT_KEYS, currency_code
from engine.alerts.person import Person, number

_CONDITION = re.compile(r"^\s*([A-Za-z_$][\w$.]*)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Condition:
    """`path op literal`, e.g. `value >= 500`, `currency == 'EUR'`, `product.category != "x"`."""

    path: tuple[str, ...]
    op: str
    expected: float | str | bool

    @staticmethod
    def parse(text: str, rule: str) -> Condition:
        match = _CONDITION.match(text)
        if match is None:
            raise ConfigError(
                f"alert rule {rule!r}: cannot read condition {text!r}; "
                "write it as 'property op value' with op one of == != >= <= > <"
            )
        path, op, literal = match.groups()
        expected = _literal(literal)
        if expected is None:
            raise ConfigError(
                f"alert rule {rule!r}: {literal!r} in {text!r} is not a number, true/false "
                "or a quoted string"
            )
        if isinstance(expected, str | bool) and op not in ("==", "!="):
            raise ConfigError(f"alert rule {rule!r}: {op} needs a number in {text!r}")
        return Condition(tuple(path.split(".")), op, expected)

    @property
    def on_amount(self) -> bool:
        """Whether this compares an amount of money (`total`, `price`…) with a number."""
        return isinstance(self.expected, float) and self.path[-1] in AMOUNT_KEYS

    def holds(self, properties: dict[str, Any]) -> bool:
        value: Any = properties
        for key in self.path:
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        if isinstance(self.expected, bool) or isinstance(value, bool):
            return _OPERATORS[self.op](value, self.expected)
        if isinstance(self.expected, float):
            # Browsers send prices as strings as often as numbers.
            actual = number(value)
            return actual is not None and _OPERATORS[self.op](actual, self.expected)
        return _OPERATORS[self.op](str(value), self.expected)


@dataclass(frozen=True)
class Rule:
    config: AlertRule
    conditions: tuple[Condition, ...]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def currency(self) -> str | None:
        return self.config.currency

    def admits(self, person: Person) -> bool:
        """Whether the rule may fire for this person: `require_verified` wants a signed identity."""
        return person.verified or not self.config.require_verified

    def matches_event(self, event: str | None, properties: dict[str, Any]) -> bool:
        return (
            event == self.config.event
            and self._in_currency(properties)
            and all(c.holds(properties) for c in self.conditions)
        )

    def _in_currency(self, properties: dict[str, Any]) -> bool:
        """Whether the event is in the rule's currency, when its conditions weigh money:
        `value >= 500` in a EUR rule means 500 euros, not 900 dollars or 900 of no currency."""
        if self.currency is None or not any(c.on_amount for c in self.conditions):
            return True
        return currency_code(properties.get("currency")) == self.currency

    def watches(self, person: Person) -> bool:
        """Whether a returned rule follows this person."""
        rule = self.config
        if any(email in rule.emails for email in person.emails):
            return True
        if any(email.rpartition("@")[2] in rule.domains for email in person.emails):
            return True
        floor = rule.min_lifetime_value
        return (
            floor is not None
            and person.identified
            and person.lifetime_value.reaches(floor, self.currency)
        )

    def worth_it(self, person: Person) -> bool:
        """Whether an identified rule fires for this newly identified person."""
        return person.identified and person.value.reaches(self.config.threshold, self.currency)


def compile_rules(rules: tuple[AlertRule, ...]) -> list[Rule]:
    """Parse every condition now, so a mistake in bond.toml stops the worker at start."""
    return [Rule(r, tuple(Condition.parse(c, r.name) for c in r.where)) for r in rules]


def cooling_down(conn: sqlite3.Connection, rule: Rule, person_id: int, at: int) -> bool:
    row = conn.execute(
        "SELECT fired_at FROM alert_cooldowns WHERE rule = ? AND person_id = ?",
        (rule.name, person_id),
    ).fetchone()
    return row is not None and at < row[0] + rule.config.cooldown_s * 1000


def fired(conn: sqlite3.Connection, rule: Rule, person_id: int, at: int) -> None:
    conn.execute(
        "INSERT INTO alert_cooldowns (rule, person_id, fired_at) VALUES (?, ?, ?) "
        "ON CONFLICT (rule, person_id) DO UPDATE SET fired_at = excluded.fired_at",
        (rule.name, person_id, at),
    )


def _literal(text: str) -> float | str | bool | None:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return number(text)
