"""Money kept apart by currency: euros and dollars added together are a number in neither.

An amount's currency is read as the dashboard reads an order's: an ISO 4217 code, in any case.
An amount sent without one (or with "€" or "euro") has no currency. It stays a sum of its own,
as on the dashboard's person page, and no rule's currency claims it: nothing in Bond assumes a
shop's currency. Nothing is converted either, since Bond knows no exchange rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# An ISO 4217 code in upper case; None for an amount sent without one.
Currency = str | None

# The properties of Segment's e-commerce spec that hold money: a rule's currency governs an
# event rule's conditions on these and leaves the others (quantity, position) alone.
AMOUNT_KEYS = frozenset(
    {"total", "subtotal", "revenue", "value", "shipping", "tax", "discount", "price"}
)


def currency_code(value: Any) -> Currency:
    """A browser's `currency` property as a code (`eur` is EUR), or None if it is not one."""
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    return None


@dataclass(frozen=True)
class Amounts:
    """One amount per currency."""

    by_currency: Mapping[Currency, float] = field(default_factory=dict)

    @staticmethod
    def total(amounts: Iterable[tuple[float, Currency]]) -> Amounts:
        sums: dict[Currency, float] = {}
        for amount, currency in amounts:
            sums[currency] = sums.get(currency, 0.0) + amount
        return Amounts(sums)

    @staticmethod
    def largest(*each: Amounts) -> Amounts:
        """Per currency, the largest of the amounts in it."""
        most: dict[Currency, float] = {}
        for amounts in each:
            for currency, amount in amounts.by_currency.items():
                most[currency] = max(most.get(currency, amount), amount)
        return Amounts(most)

    def in_currency(self, currency: Currency) -> float:
        return self.by_currency.get(currency, 0.0)

    def reaches(self, floor: float, currency: str | None) -> bool:
        """Whether the amount in `currency` reaches `floor`.

        A rule that names no currency reads its floor in each currency on its own: the amount in
        any one of them reaching it is enough (a currency with nothing in it counts as 0).
        """
        if currency is not None:
            return self.in_currency(currency) >= floor
        return max((0.0, *self.by_currency.values())) >= floor

    def ranked(self) -> list[tuple[Currency, float]]:
        """The amounts that are not zero, largest first, as the dashboard lists its totals."""
        found = [(c, a) for c, a in self.by_currency.items() if a]
        return sorted(found, key=lambda item: (-item[1], item[0] or ""))

    def __bool__(self) -> bool:
        return any(self.by_currency.values())
