"""What the worker tells other engine parts (alerts, households) inside its batch transaction.

A hook's writes share the transaction that applies the events and moves the offset, so an alert
outbox row or a household update exists exactly when the state that caused it does: a crash
either keeps all of them or none, and a replay never doubles them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, Protocol

from bond.config import Config

ChangeKind = Literal["identified", "merged", "refused", "aliased"]


class AppliedEvent(NamedTuple):
    """One event as the identity graph resolved it."""

    seq: int
    person_id: int  # the person owning the event once applied (never None)
    identified: bool  # whether that person has a user id or email
    source: str
    type: str
    event: str | None
    anonymous_id: str | None
    user_id: str | None
    timestamp: int  # UTC epoch ms, clock skew corrected
    received_at: int
    user_agent: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]


class IdentityChange(NamedTuple):
    """A stitch, merge or refusal, as recorded in `identity_events`.

    - identified: an anonymous person gained its first user id or email in place;
    - merged: an anonymous person (`other_person_id`) was folded into identified `person_id`;
    - aliased: an alias linked `other_person_id`'s identifier to `person_id`;
    - refused: a client call would have merged two identified persons, or broken a limit.
    """

    kind: ChangeKind
    person_id: int
    other_person_id: int | None
    reason: str | None  # a stable code for refusals (see engine.graph.Refusal), else None
    anonymous_events_stitched: int
    browsers_stitched: int
    first_seen: int | None  # the person's first_seen after the change
    at: int  # the triggering event's timestamp
    seq: int  # the triggering event's offset


class Hook(Protocol):
    name: str

    def migrate(self, conn: sqlite3.Connection) -> None:
        """Create the hook's tables (bond.storage.sqlite.migrate with its own component name)."""
        ...

    def on_events(self, conn: sqlite3.Connection, events: Sequence[AppliedEvent]) -> None:
        """Called once per batch, after the graph update, in the same transaction."""
        ...

    def on_identity(self, conn: sqlite3.Connection, change: IdentityChange) -> None:
        """Called for each identity change of a batch, in the same transaction."""
        ...


def default_hooks(config: Config) -> list[Hook]:
    """The hooks `bond worker` runs; engine parts register themselves here."""
    from engine.alerts.hook import AlertsHook
    from engine.households.hook import HouseholdsHook

    return [AlertsHook(config), HouseholdsHook()]
