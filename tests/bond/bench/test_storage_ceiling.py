"""The storage ceiling stores real event-log rows, so what it times is what the log writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bond.bench.storage_ceiling import Row, StorageCeiling, row
from bond.storage.dedup import dedup_key
from bond.storage.eventlog import SqliteEventLog


def _row(n: int) -> Row:
    return row("web", f"m-{n}", f"anon-{n % 3}", b'{"type":"track","n":%d}' % n, 1_700_000_000_000)


def test_each_round_commits_whole_groups_the_event_log_reads_back(tmp_path: Path) -> None:
    ceiling = StorageCeiling(tmp_path / "events.db", _row, group=50)
    first = ceiling.run(seconds=0.01)
    second = ceiling.run(seconds=0.01)
    ceiling.close()

    assert first.events % 50 == 0 and second.events % 50 == 0
    assert first.events >= 50 and first.rate > 0 and first.cpu_s >= 0
    log = SqliteEventLog(tmp_path / "events.db")
    stored = log.read_after(0, first.events + second.events + 1)
    assert len(stored) == first.events + second.events
    # Numbered on from one round to the next, each a row the collector could have written.
    assert [event.message_id for event in stored[:2]] == ["m-0", "m-1"]
    assert stored[-1].message_id == f"m-{len(stored) - 1}"
    event = stored[1]
    assert (event.source, event.type, event.anonymous_id, event.user_id) == (
        "web",
        "track",
        "anon-1",
        None,
    )
    assert bytes(event.body) == b'{"type":"track","n":1}'
    log.close()
    with sqlite3.connect(tmp_path / "events.db") as conn:
        key = conn.execute("SELECT dedup_key FROM events WHERE seq = ?", (event.seq,)).fetchone()
    assert bytes(key[0]) == dedup_key("web", "m-1")
