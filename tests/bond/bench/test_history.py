"""The bench's history is an event log as a collector in use leaves it, digests and all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bond.bench.history import fill
from bond.storage.eventlog import NewEvent, SqliteEventLog


def _track(message_id: str) -> NewEvent:
    return NewEvent(
        "default", message_id, "track", "anon-1", None, "Clicked", 1, 1, None, None, b"{}"
    )


def _dedup_keys(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT sum(length(keys)) / 16 FROM dedup_chunks").fetchone()[0])


def test_all_but_the_newest_digests_are_in_runs_of_a_round_each(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    fill(path, 1_000, in_memory=300)

    assert _dedup_keys(path) == 700
    with sqlite3.connect(path) as conn:
        runs = conn.execute("SELECT level, complete FROM dedup_runs").fetchall()
        assert runs == [(0, 1)] * 3  # 300, 300 and 100 digests
        assert conn.execute("SELECT merged_seq FROM dedup_state").fetchone()[0] == 700
        assert conn.execute("SELECT count(*), max(seq) FROM events").fetchone() == (1000, 1000)


def test_the_history_is_stored_once_and_new_events_merge_digests_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    fill(path, 1_000, in_memory=300)
    log = SqliteEventLog(path, dedup_memory=300)

    # Sent again, events from both tiers are duplicates: the table's and memory's.
    assert log.append([_track("history-5"), _track("history-999")], []) == 0
    # A new event finds memory full, so a part is merged into a run right after it.
    assert log.append([_track("new-1")], []) == 1
    assert _dedup_keys(path) > 700
    assert log.read_after(1_000, 10)[0].message_id == "new-1"
    assert log.read_after(0, 1)[0].body == (
        b'{"type":"track","event":"Product Viewed","anonymousId":"anon-1","messageId":"history-1"}'
    )


def test_rounds_of_merges_leave_runs_level_by_level(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    # 29 rounds of 100: 16 + 3 * 4 + 1, as merges would have left them (the last round short).
    fill(path, 2_950, in_memory=100)

    with sqlite3.connect(path) as conn:
        runs = conn.execute(
            "SELECT level, sum(length(keys)) / 16 FROM dedup_runs "
            "JOIN dedup_chunks USING (run) GROUP BY run ORDER BY run"
        ).fetchall()
    assert runs == [(2, 1_600), (1, 400), (1, 400), (1, 400), (0, 50)]
    assert _dedup_keys(path) == 2_850
