"""An event log as a collector leaves it after a while in use, for benchmarks to start from.

A fresh collector holds the digest of every event in memory until it has stored
DEDUP_MEMORY_KEYS of them (bond/storage/dedup.py). From then on, which is where a collector in
use spends its life, every new event is also looked up in the sorted runs on disk and every
digest merged into them, which an empty log spares the commit process: a bench that starts from
one measures that cheaper start instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from bond.storage.dedup import dedup_key
from bond.storage.dedup_runs import FANOUT, TOP_LEVEL, write_run
from bond.storage.eventlog import DEDUP_MEMORY_KEYS, SqliteEventLog
from bond.storage.sqlite import connect

# Twice as many digests on disk as in memory: two runs.
HISTORY_EVENTS = 3 * DEDUP_MEMORY_KEYS
_AGE_MS = 3_600_000  # an hour old: far from retention, and before anything a bench sends

_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :events)
INSERT INTO events (source, message_id, type, anonymous_id, event, timestamp, received_at, ip,
    user_agent, body, dedup_key)
SELECT :source, 'history-' || i, 'track', 'anon-' || (i % 5000), 'Product Viewed', :at, :at,
    '127.0.0.0', 'Mozilla/5.0',
    CAST('{"type":"track","event":"Product Viewed","anonymousId":"anon-' || (i % 5000)
        || '","messageId":"history-' || i || '"}' AS BLOB),
    bond_dedup_key(:source, 'history-' || i)
FROM n
"""


def fill(
    path: Path, events: int, *, source: str = "default", in_memory: int = DEDUP_MEMORY_KEYS
) -> None:
    """Store `events` track events from `source` ("history-<n>") in a new event log at `path`,
    with the digests of all but the last `in_memory` in sorted runs, as a collector that stored
    them would have left them. Only the process's memory is new.
    """
    SqliteEventLog(path).close()  # the schema, as the collector makes it
    conn = connect(path, durable=False)  # a fixture, not data to keep
    conn.create_function("bond_dedup_key", 2, dedup_key, deterministic=True)
    received = int(time.time() * 1000) - _AGE_MS
    merged = max(events - in_memory, 0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_FILL, {"events": events, "source": source, "at": received})
        per_round = in_memory or merged  # a round of merges writes what memory held
        start = 0
        for level in _levels(-(-merged // per_round)):
            end = min(start + per_round * FANOUT**level, merged)
            rows = conn.execute(
                "SELECT dedup_key FROM events WHERE seq > ? AND seq <= ?", (start, end)
            )
            write_run(conn, b"".join(key for (key,) in rows), level=level, at=received)
            start = end
        conn.execute("UPDATE dedup_state SET merged_seq = ?", (merged,))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _levels(rounds: int) -> list[int]:
    """The levels of the runs that `rounds` rounds of merges leave, oldest first: each level
    holds fewer than FANOUT runs (the digits of `rounds` in base FANOUT), except the top."""
    levels: list[int] = []
    for level in range(TOP_LEVEL, -1, -1):
        count, rounds = divmod(rounds, FANOUT**level)
        levels += [level] * count
    return levels
