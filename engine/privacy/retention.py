"""Retention: raw events older than `engine.retention_days` leave the event log.

Only events the worker has already applied are deleted (at or below its offset), so nothing
is lost to the identity graph: persons, identifiers and each person's stitched timeline stay.
The timeline keeps what it shows (the event's name, time and properties or traits, sealed with
the person's key); what goes is the raw request as sent: its context (page URL, referrer,
user agent, IP), and the rows of refused events. Deletes run in chunks, so the collector, which
appends to the same file, waits at most one chunk.
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
        events = rejected = 0
        while True:
            gone, refused = log_.delete_older(cutoff, applied, CHUNK)
            events, rejected = events + gone, rejected + refused
            if gone < CHUNK and refused < CHUNK:
                break
        if events or rejected:
            counts = {"log_events": events, "rejected_events": rejected}
            audit.record(conn, "retention", requested_by="engine.retention_days", counts=counts)
            log("retention_applied", days=self.days, **counts)
        return events
