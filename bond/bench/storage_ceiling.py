"""The storage ceiling beside `bond bench ingest`'s batches: the same events, inserted bare.

The trivial endpoint bounds what one Python worker can answer; this bounds what the disk and
SQLite can store on the same machine in the same minutes. The bench's own events go into a fresh
event log's `events` table by plain `executemany`, a durable commit for every group, with each
row built before the clock starts: no HTTP, no parsing or validation, no duplicate check, no
process boundary. No collector on this machine can store events faster, so batches measured
against it say how much of the gap to a target is the collector's and how much the machine's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bond.storage.dedup import dedup_key
from bond.storage.eventlog import INSERT_ROW, SqliteEventLog
from bond.storage.sqlite import connect

# Bound as the event log binds its rows: a missing text as 0, blobs as bytearrays.
Row = tuple[str, str, str, str, int, str, int, int, str, str, bytearray, bytearray]


@dataclass
class Round:
    events: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0


def row(source: str, message_id: str, anonymous_id: str, body: bytes, now_ms: int) -> Row:
    """A track event's row as the collector would store it."""
    return (
        source,
        message_id,
        "track",
        anonymous_id,
        0,
        "Product Viewed",
        now_ms,
        now_ms,
        "127.0.0.0",
        "Mozilla/5.0",
        bytearray(body),
        bytearray(dedup_key(source, message_id)),
    )


class StorageCeiling:
    """A bare event log that rounds of grouped inserts are timed against."""

    def __init__(self, path: Path, make_row: Callable[[int], Row], *, group: int) -> None:
        SqliteEventLog(path).close()  # the event log's own schema and pragmas
        self._conn = connect(path)
        self._make_row = make_row
        self.group = group
        self.numbered = 0

    def run(self, seconds: float) -> Round:
        """Insert groups for about `seconds` of insert time; only the inserts are timed."""
        done = Round(0, 0.0, 0.0)
        while done.wall_s < seconds:
            rows = [self._make_row(self.numbered + i) for i in range(self.group)]
            self.numbered += self.group
            cpu, wall = time.process_time(), time.perf_counter()
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(INSERT_ROW, rows)
            self._conn.execute("COMMIT")
            done.wall_s += time.perf_counter() - wall
            done.cpu_s += time.process_time() - cpu
            done.events += self.group
        return done

    def close(self) -> None:
        self._conn.close()
