"""Retention: raw events older than `engine.retention_days` leave the event log.

Only events the worker has already applied are deleted (at or below its offset), so nothing
is lost to the identity graph: persons, identifiers and each person's stitched timeline stay.
The timeline keeps what it shows (the event's name, time and properties or traits, sealed with
the person's key); what goes is the raw request as sent: its context (page URL, referrer,
user agent, IP), and the rows of refused events. Deletes run in chunks, so the collector, which
appends to the same file, waits at most one chunk.

A chunk's delete holds the log's write lock while it looks for old rows from the oldest seq up
to the bound it is given, and when none are old it looks at every row up to that bound: with the
worker's offset as the bound, every run read the whole log with the collector's commits waiting
(0.9-3.3 s on 400,000 events, past the collector's 5 s busy timeout on a few million). So the
bound is where the old events end, found first by a binary search over seq without the lock:
the collector stamps `received_at` as it commits, so receipt time grows with seq.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from bond.logs import log
from bond.storage.eventlog import SqliteEventLog
from engine.privacy import audit

DAY_MS = 86_400_000
EVERY_S = 60.0
CHUNK = 5_000


class Retention:
    def __init__(self, days: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.days = days
        self.clock = clock
        self.next_run = 0.0

    def due(self) -> bool:
        return self.days > 0 and self.clock() >= self.next_run

    def run(self, conn: sqlite3.Connection, log_: SqliteEventLog, applied: int) -> int:
        """Delete what is past retention and applied; returns how many events went."""
        self.next_run = self.clock() + EVERY_S
        cutoff = int(time.time() * 1000) - self.days * DAY_MS
        bound = old_through(log_, cutoff, applied)
        events = rejected = 0
        while True:
            gone, refused = log_.delete_older(cutoff, bound, CHUNK)
            events, rejected = events + gone, rejected + refused
            if gone < CHUNK and refused < CHUNK:
                break
        if events or rejected:
            counts = {"log_events": events, "rejected_events": rejected}
            audit.record(conn, "retention", requested_by="engine.retention_days", counts=counts)
            log("retention_applied", days=self.days, **counts)
        return events


def old_through(log_: SqliteEventLog, cutoff: int, applied: int) -> int:
    """The last seq, at most `applied`, of the events received before `cutoff` (0: none).

    A few events received out of seq order around the cutoff (the same millisecond, two
    collectors) may fall on the wrong side; they go in a later run, a minute on.
    """
    old, new = 0, applied + 1  # every seq <= old is old, every seq >= new is not (or absent)
    while new - old > 1:
        middle = (old + new) // 2
        found = log_.read_after(middle - 1, 1)
        if found and found[0].seq < new and found[0].received_at < cutoff:
            old = found[0].seq
        else:
            new = middle
    return old
