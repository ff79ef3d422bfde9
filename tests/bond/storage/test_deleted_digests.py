"""Digests of deleted events (erasure, suppressed events, retention) outlive their rows until the
runs hold them, whichever way the writer stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bond.storage.eventlog import LogMatch, SqliteEventLog
from tests.bond.storage.test_dedup import groups_of, new, table, writer

MEMORY = 10_000  # no merge unless a test asks for one

DELETES: dict[str, Callable[[SqliteEventLog], int]] = {
    "erasure": lambda log: log.erase(LogMatch(["a"], [], [], []), [])[0],
    "suppressed": lambda log: log.delete_seqs(list(range(1, 301))),
    "retention": lambda log: log.delete_older(received_before=3, up_to_seq=300, limit=1_000)[0],
}


def delete(path: Path, how: str) -> None:
    """Delete the first 300 events from a connection of its own, as the worker or `bond erase`."""
    log = SqliteEventLog(path)
    assert DELETES[how](log) == 300
    log.close()


def stored_again(path: Path, message_ids: list[str]) -> int:
    log = SqliteEventLog(path, dedup_memory=MEMORY)
    try:
        return log.append([new(m) for m in message_ids], [])
    finally:
        log.close()


@pytest.mark.parametrize("how", DELETES)
def test_deleted_events_sent_again_after_the_writer_was_killed_are_duplicates(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "events.db"
    assert sum(writer(path, groups_of("a", 300), stop="kill", memory=MEMORY)) == 300
    delete(path, how)
    assert stored_again(path, [f"a{i}" for i in range(0, 300, 3)]) == 0
    assert table(path, "SELECT count(*) FROM events") == 0


@pytest.mark.parametrize("how", DELETES)
def test_deleted_events_stay_duplicates_after_a_clean_stop_a_merge_and_a_kill(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "events.db"
    writer(path, groups_of("a", 300), stop="clean", memory=MEMORY)  # memory stored at its stop
    delete(path, how)
    # A merge replaces the stored memory: the parts not merged are read back from the rows.
    assert writer(path, [[f"d{i}" for i in range(20)]], stop="kill", memory=0) == [20]
    assert table(path, "SELECT count(*) FROM dedup_memory") == 0
    assert stored_again(path, [f"a{i}" for i in range(300)] + ["b0"]) == 1


def test_digests_kept_for_deleted_events_go_once_every_part_was_merged_past_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    writer(path, groups_of("a", 300), stop="kill", memory=MEMORY)
    delete(path, "erasure")
    assert table(path, "SELECT count(*) FROM dedup_deleted") == 300
    # A round of merges, a few parts after each append, puts them in the runs.
    writer(path, groups_of("c", 100, size=1), stop="clean", memory=0)
    log = SqliteEventLog(path)
    assert log.delete_seqs([301]) == 1
    log.close()
    assert table(path, "SELECT count(*) FROM dedup_deleted") <= 1
    assert stored_again(path, [f"a{i}" for i in range(300)] + ["c0"]) == 0
