"""Sessions: one browser's events of one account, split where the browser is idle 30 minutes.

An event with no anonymous id was sent by the site's server for the person (an order from its
backend through a Segment server library). It belongs to the session the person was browsing
in at the time, their most recently active one, and never starts one of its own: taken for a
browser's session, it made the site's server a device of the account, at the hour of its UTC
time. With no session of the person around it (a renewal, an order taken by phone) it is in no
session, and such an order is not attributed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SESSION_GAP_MS = 30 * 60 * 1000
CONVERSION = "Order Completed"


class EventLike(Protocol):
    """What a session needs of an event (the worker's AppliedEvent has it all)."""

    @property
    def person_id(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def identified(self) -> bool: ...
    @property
    def user_agent(self) -> str | None: ...
    @property
    def properties(self) -> Mapping[str, Any]: ...
    @property
    def context(self) -> Mapping[str, Any]: ...


@dataclass(slots=True)
class Session:
    device: str  # the browser's anonymous id
    person_id: int
    start_ms: int
    last_ms: int
    timezone: str | None = None
    user_agent: str | None = None
    identified: bool = False
    categories: Counter[str] = field(default_factory=Counter)
    events: int = 0

    def continues(self, timestamp: int) -> bool:
        # A late event (earlier than the last one) still belongs to the session it interrupts.
        return timestamp - self.last_ms < SESSION_GAP_MS

    def takes(self, person_id: int, timestamp: int) -> bool:
        """Whether a server's event for `person_id` at `timestamp` happened in this session."""
        return (
            self.person_id == person_id
            and self.start_ms - SESSION_GAP_MS < timestamp < self.last_ms + SESSION_GAP_MS
        )

    def add(self, event: EventLike) -> None:
        # The person is the latest event's: a login mid-session hands the session to the account.
        self.person_id = event.person_id
        if event.identified:
            self.identified = True
        if event.timestamp > self.last_ms:
            self.last_ms = event.timestamp
        self.events += 1
        if self.timezone is None:
            timezone = event.context.get("timezone")
            if isinstance(timezone, str):
                self.timezone = timezone
        if self.user_agent is None and event.user_agent:
            self.user_agent = event.user_agent
        properties = event.properties
        category = properties.get("category")
        if isinstance(category, str) and category:
            self.categories[category.lower()] += 1
        if "products" in properties:
            self.categories.update(product_categories(properties["products"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "person_id": self.person_id,
            "start_ms": self.start_ms,
            "last_ms": self.last_ms,
            "timezone": self.timezone,
            "user_agent": self.user_agent,
            "identified": self.identified,
            "categories": dict(self.categories),
            "events": self.events,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Session:
        return cls(
            device=raw["device"],
            person_id=raw["person_id"],
            start_ms=raw["start_ms"],
            last_ms=raw["last_ms"],
            timezone=raw["timezone"],
            user_agent=raw["user_agent"],
            identified=raw["identified"],
            categories=Counter(raw["categories"]),
            events=raw["events"],
        )


def product_categories(products: Any) -> Iterator[str]:
    """The category of each product in an event's `products` list."""
    if isinstance(products, list):
        for product in products:
            if isinstance(product, dict):
                name = product.get("category")
                if isinstance(name, str) and name:
                    yield name.lower()


@dataclass(frozen=True)
class RawEvent:
    """The fields sessionising needs, for callers that do not have the worker's AppliedEvent."""

    person_id: int
    anonymous_id: str | None  # None: sent by the site's server for the person
    timestamp: int
    identified: bool = True
    user_agent: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


def sessionise(events: Iterable[RawEvent]) -> list[Session]:
    """Split events (in time order) into sessions per browser, as the processor does; for tests
    and offline use."""
    open_: dict[str, Session] = {}
    latest: dict[int, Session] = {}  # each person's most recently active session
    done: list[Session] = []
    for event in events:
        key = event.anonymous_id
        if key is None:
            found = latest.get(event.person_id)
            if found is not None and found.takes(event.person_id, event.timestamp):
                found.add(event)
            continue
        current = open_.get(key)
        if current is None or not current.continues(event.timestamp):
            if current is not None:
                done.append(current)
            current = open_[key] = Session(key, event.person_id, event.timestamp, event.timestamp)
        current.add(event)
        latest[event.person_id] = current
    done.extend(open_.values())
    return sorted(done, key=lambda s: s.start_ms)
