"""The suppression list: identifiers of erased persons, whose late events are dropped.

After an erasure, events can still arrive with the person's identifiers: a browser's retry
queue, a tab left open, a server job. The collector drops them at ingest (answering 2xx, so the
client stops retrying, and counting them) and the worker skips any that were accepted in the
second before the collector saw the new list, so the person does not come back.

The list lives in events.db as keyed digests (the key beside them, made on first use): the
identifiers themselves are not kept. A process re-reads it only when its version row moved, and
looks at that row at most once per `REFRESH_S`; per event the cost is a digest and a set
lookup per identifier, and nothing at all while the list is empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from bond.ids import clean_id, normalize_email
from bond.storage.eventlog import SqliteEventLog, StoredEvent
from engine.privacy.crypto import blind

REFRESH_S = 1.0
KINDS = ("anonymous_id", "user_id", "email")


def forms(value: str) -> list[tuple[str, str]]:
    """Every (kind, value) an operator's EMAIL|USER_ID|ANONYMOUS_ID argument may stand for."""
    found = []
    email = normalize_email(value)
    if email is not None:
        found.append(("email", email))
    clean = clean_id(value)
    if clean is not None:
        found += [("user_id", clean), ("anonymous_id", clean)]
    return found


def email_in(type_: str, message: dict[str, Any]) -> str | None:
    """The email an event would give its person (the graph reads it from identify traits)."""
    if type_ != "identify":
        return None
    traits = message.get("traits")
    return normalize_email(traits.get("email")) if isinstance(traits, dict) else None


class SuppressionList:
    def __init__(self, log: SqliteEventLog, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self.key = log.suppression_key()
        self.version = -1
        self.digests: frozenset[bytes] = frozenset()
        self.checked = 0.0
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.checked < REFRESH_S:
            return
        self.checked = now
        version = self.log.suppression_version()
        if version != self.version:
            self.digests, self.version = self.log.suppressed(), version

    def active(self) -> bool:
        """Whether anything is suppressed (re-read when due): call once per request or batch."""
        self.refresh()
        return bool(self.digests)

    def blocks(self, anonymous_id: str | None, user_id: str | None, email: str | None) -> bool:
        digests, key = self.digests, self.key
        return (
            (anonymous_id is not None and blind(key, "anonymous_id", anonymous_id) in digests)
            or (user_id is not None and blind(key, "user_id", user_id) in digests)
            or (email is not None and blind(key, "email", email) in digests)
        )

    def split(self, events: Sequence[StoredEvent]) -> tuple[list[StoredEvent], list[int], set[str]]:
        """The events to apply, the seqs of those to drop (the worker's second line), and the
        browsers a dropped event named as only an erased person's.

        Such a browser is one the person identified on after their erasure was planned: the
        collector took its identify before it re-read the list, so the browser's other events
        went in as an anonymous visitor's.
        """
        if not self.active():
            return list(events), [], set()
        kept, dropped, claimed = [], [], set()
        for ev in events:
            email = email_in(ev.type, orjson.loads(ev.body)) if ev.type == "identify" else None
            anonymous_id, user_id = ev.anonymous_id, ev.user_id
            if not self.blocks(anonymous_id, user_id, email):
                kept.append(ev)
                continue
            dropped.append(ev.seq)
            # Its browser is not suppressed (yet), so what blocked it is a user id or email;
            # another person's user id beside an erased email keeps the browser theirs.
            if (
                anonymous_id is not None
                and not self.blocks(anonymous_id, None, None)
                and (user_id is None or self.blocks(None, user_id, None))
                and (email is None or self.blocks(None, None, email))
            ):
                claimed.add(anonymous_id)
        return kept, dropped, claimed
