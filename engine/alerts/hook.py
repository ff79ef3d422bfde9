"""The engine hook: evaluate alert rules on each applied batch, enqueue in its transaction.

Identity changes arrive first (`on_identity`) and are kept until `on_events` for the same batch,
where the events carry what the changes lack (when the identify reached the collector). By then
the batch's graph writes are flushed, so the person read here includes the whole batch.

Work per batch stays small when nothing matches: event rules look at names first, identified
rules only at identity changes and value-bearing events, returned rules only at identified
persons' first event in the batch, and a person is read in full only for a candidate alert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bond.config import Config
from engine.alerts import compose, outbox, person
from engine.alerts.message import Message
from engine.alerts.rules import Rule, compile_rules, cooling_down, fired
from engine.hooks import AppliedEvent, IdentityChange

# Identity changes after which a person is newly known to be someone.
RECOGNISED = frozenset({"identified", "merged", "aliased"})
VALUE_EVENTS = person.ORDER_EVENTS | person.CART_EVENTS | {"Product Added"}


class AlertsHook:
    name = "alerts"

    def __init__(self, config: Config) -> None:
        self.rules = compile_rules(config.alerts.rules)
        # Sorted once, so an event costs one dict lookup by name whatever the rules.
        self.identified_rules = [r for r in self.rules if r.kind == "identified"]
        self.returned_rules = [r for r in self.rules if r.kind == "returned"]
        self.event_rules: dict[str | None, list[Rule]] = {}
        for rule in self.rules:
            if rule.kind == "event":
                self.event_rules.setdefault(rule.config.event, []).append(rule)
        self._changes: list[IdentityChange] = []

    def migrate(self, conn: sqlite3.Connection) -> None:
        outbox.migrate_outbox(conn)

    def on_identity(self, conn: sqlite3.Connection, change: IdentityChange) -> None:
        if change.kind in RECOGNISED:
            self._changes.append(change)

    def on_events(self, conn: sqlite3.Connection, events: Sequence[AppliedEvent]) -> None:
        changes, self._changes = self._changes, []
        if not self.rules:
            return
        batch = _Batch(conn)
        by_seq = {e.seq: e for e in events}
        for change in changes:
            trigger = by_seq.get(change.seq)
            received = trigger.received_at if trigger else None
            self._identified(batch, change.person_id, change.at, received)
        first_of_person: dict[int, AppliedEvent] = {}
        event_rules, identified_rules = self.event_rules, self.identified_rules
        for ev in events:
            if ev.identified:
                # A return is a visit, a browser's: not an event the shop's server sends for the
                # person (no anonymous id), such as a subscription's renewal.
                if ev.anonymous_id is not None and ev.person_id not in first_of_person:
                    first_of_person[ev.person_id] = ev
                if identified_rules and ev.event in VALUE_EVENTS and batch.recognised_lately(ev):
                    # Identified first, then the cart or order that makes them worth an alert.
                    self._identified(batch, ev.person_id, ev.timestamp, ev.received_at)
            for rule in event_rules.get(ev.event, ()):
                if rule.matches_event(ev.event, ev.properties):
                    batch.fire(rule, ev.person_id, ev.timestamp, ev.received_at, ev)
        if self.returned_rules:
            for ev in first_of_person.values():
                self._returned(batch, ev)

    def _identified(self, batch: _Batch, person_id: int, at: int, received: int | None) -> None:
        for rule in self.identified_rules:
            batch.fire(rule, person_id, at, received)

    def _returned(self, batch: _Batch, ev: AppliedEvent) -> None:
        previous = person.previous_seen(batch.conn, ev.person_id, ev.timestamp, ev.seq)
        if previous is None:
            return
        away_ms = ev.timestamp - previous
        for rule in self.returned_rules:
            if away_ms >= rule.config.away_s * 1000:
                batch.fire(rule, ev.person_id, ev.timestamp, ev.received_at, away_ms=away_ms)


class _Batch:
    """One batch's evaluation: persons read once, cooldowns checked and set, alerts enqueued."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._persons: dict[int, person.Person | None] = {}

    def fire(
        self,
        rule: Rule,
        person_id: int,
        at: int,
        received: int | None,
        event: AppliedEvent | None = None,
        *,
        away_ms: int = 0,
    ) -> None:
        if cooling_down(self.conn, rule, person_id, at):
            return
        who = self._person(person_id)
        if who is None or not rule.admits(who):
            return
        message: Message | None = None
        if rule.kind == "identified" and rule.worth_it(who):
            message = compose.identified(rule.name, who, at, currency=rule.currency)
        elif rule.kind == "returned" and rule.watches(who):
            message = compose.returned(rule.name, who, away_ms, at)
        elif rule.kind == "event" and event is not None:
            message = compose.event(rule.name, who, event.event or "", event.properties, at)
        if message is None:
            return
        fired(self.conn, rule, person_id, at)
        outbox.enqueue(
            self.conn,
            rule=rule.name,
            kind=rule.kind,
            person_id=person_id,
            summary=compose.summary(message),
            payload=message.payload(),
            caused_at=received,
        )

    def recognised_lately(self, ev: AppliedEvent) -> bool:
        """Whether the person was identified earlier in the session this event belongs to.

        Earlier in the log, not only in time: a cart sent with the identify at one timestamp
        came before it, and the identification has fired the rule already.
        """
        row = self.conn.execute(
            "SELECT 1 FROM identity_events WHERE person_id = ? AND kind IN (?, ?, ?) "
            "AND at BETWEEN ? AND ? AND seq < ? LIMIT 1",
            (
                ev.person_id,
                *sorted(RECOGNISED),
                ev.timestamp - person.SESSION_GAP_MS,
                ev.timestamp,
                ev.seq,
            ),
        ).fetchone()
        return row is not None

    def _person(self, person_id: int) -> person.Person | None:
        if person_id not in self._persons:
            self._persons[person_id] = person.load_person(self.conn, person_id)
        return self._persons[person_id]
