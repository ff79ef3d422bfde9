"""Duplicates across both tiers of digests: memory, the runs, other connections, restarts."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from bond.bench.history import fill
from bond.errors import StorageError
from bond.storage.dedup import dedup_key
from bond.storage.dedup_runs import PARTS, RunFilter, SortedRuns
from bond.storage.eventlog import NewEvent, RejectedEvent, SqliteEventLog
from bond.storage.sqlite import connect
from conftest import ROOT, captured_logs

DAY_MS = 86_400_000


def new(message_id: str, received_at: int = 2) -> NewEvent:
    return NewEvent("web", message_id, "track", "a", None, "E", 1, received_at, None, None, b"{}")


def ids(log: SqliteEventLog) -> list[str]:
    return [e.message_id for e in log.read_after(0, 100_000)]


def table(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0] or 0)


def merged_keys(path: Path) -> int:
    return table(path, "SELECT sum(length(keys)) / 16 FROM dedup_chunks")


def test_the_digest_is_the_one_stored_by_earlier_versions() -> None:
    # Logs already hold digests made this way; a different one would miss their duplicates.
    for source, message_id in (("web", "m1"), ("a:b", "c"), ("", "x"), ("é", "ü")):
        made = f"{len(source)}:{source}:{message_id}".encode()
        assert dedup_key(source, message_id) == hashlib.blake2b(made, digest_size=16).digest()


def test_duplicates_are_found_after_their_digests_left_memory(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db", dedup_memory=5)
    first = [f"m{i}" for i in range(600)]
    for start in range(0, 600, 20):
        assert log.append([new(m) for m in first[start : start + 20]], []) == 20
    # Hundreds of parts were merged into runs by now.
    assert merged_keys(tmp_path / "events.db") > 500
    assert log.append([new(m) for m in first[::7]], []) == 0
    assert log.append([new("late"), new("m3"), new("late")], []) == 1
    assert ids(log) == [*first, "late"]


def test_a_new_process_refuses_what_the_last_one_held_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    before = SqliteEventLog(path)
    assert before.append([new(f"m{i}") for i in range(50)], []) == 50
    before.close()
    after = SqliteEventLog(path)
    assert after.append([new("m0"), new("m49"), new("m50")], []) == 1
    assert len(ids(after)) == 51


def test_a_whole_round_of_merges_moves_the_offset_a_restart_reads_from(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, dedup_memory=0)
    for i in range(PARTS + 10):
        log.append([new(f"m{i}")], [])
    merged = table(path, "SELECT merged_seq FROM dedup_state")
    assert 0 < merged < PARTS + 10
    log.close()
    again = SqliteEventLog(path)
    assert again.append([new(f"m{i}") for i in range(PARTS + 10)], []) == 0


def test_two_connections_appending_store_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    one = SqliteEventLog(path, dedup_memory=3)
    two = SqliteEventLog(path, dedup_memory=3)
    assert one.append([new("a"), new("b")], []) == 2
    # `two` loads what is there on its first append; `one` learns of `two`'s rows as they come.
    assert two.append([new("b"), new("c")], []) == 1
    assert one.append([new("c"), new("d")], []) == 1
    assert two.append([new("d"), new("a"), new("e")], []) == 1
    assert one.append([new("e"), new("f")], []) == 1
    assert two.append([new("g")], []) == 1
    assert one.append([new("g")], []) == 0
    assert ids(one) == ["a", "b", "c", "d", "e", "f", "g"]


def test_a_rolled_back_append_leaves_no_digest_behind(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    broken = RejectedEvent("web", 5, "no id", None)  # type: ignore[arg-type]  # NOT NULL body
    with pytest.raises(StorageError):
        log.append([new("m1"), new("m2")], [broken])
    assert ids(log) == []
    assert log.append([new("m1"), new("m2")], []) == 2


def test_digests_of_events_gone_by_retention_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, dedup_memory=0)
    log.append([new(f"old{i}", received_at=1) for i in range(20)], [])
    for i in range(PARTS):
        log.append([new(f"filler{i}", received_at=1)], [])
    now = 100 * DAY_MS
    log.append([new("kept", received_at=now)], [])
    assert log.delete_older(received_before=now, up_to_seq=10**9, limit=1000) == (20 + PARTS, 0)
    assert log.append([new("old3", received_at=now)], []) == 0  # not pruned yet: a duplicate
    for i in range(PARTS):
        log.append([new(f"new{i}", received_at=now)], [])
    assert table(path, f"SELECT count(*) FROM dedup_runs WHERE at < {now}") == 0
    assert log.append([new("old4", received_at=now)], []) == 1


def test_a_large_group_sent_again_long_after_is_refused_through_the_filter(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, dedup_memory=0)
    for start in range(0, 1_000, 50):
        log.append([new(f"m{i}") for i in range(start, start + 50)], [])
    log.close()
    log = SqliteEventLog(path, dedup_memory=0)
    assert log.append([new("first")], []) == 1  # loads the digests and starts the filter
    assert log._recent is not None  # white box: wait for the filter
    assert log._recent.runs.filter.wait(timeout_s=30)
    again = [new(f"m{i}") for i in range(0, 1_000, 9)]
    mixed = [*again[:50], *(new(f"n{i}") for i in range(80)), *again[50:]]
    assert log.append(mixed, []) == 80
    # A few at a time, the filter is tested key by key in Python: the same answers.
    assert log.append([new("m3"), new("n3"), new("few")], []) == 1
    assert ids(log)[1_000:] == ["first", *(f"n{i}" for i in range(80)), "few"]
    log.close()


def ready_filter(log: SqliteEventLog) -> RunFilter:
    """The log's run filter once it has read the runs (white box: the writer loads it lazily)."""
    log.append([new("load")], [])
    assert log._recent is not None
    assert log._recent.runs.filter.wait(timeout_s=30)
    return log._recent.runs.filter


def test_a_closing_process_stores_its_filter_and_the_next_starts_from_it(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, dedup_memory=100)
    ready_filter(log)  # before the appends, so that each digest reaches the filter once
    for start in range(0, 400, 50):
        log.append([new(f"m{i}") for i in range(start, start + 50)], [])
    assert log._recent is not None and log._recent.count > 0
    log.close()
    assert table(path, "SELECT max(upto) FROM dedup_filter") == table(
        path, "SELECT seq FROM sqlite_sequence WHERE name = 'dedup_chunks'"
    )
    stored = table(path, "SELECT sum(count) FROM dedup_filter")
    # What memory held, the next process reads from the events again: not stored in the filter.
    assert stored == merged_keys(path)
    with closing(connect(path)) as conn:
        runs = SortedRuns(conn, path, capacity=10)
        try:
            assert runs.filter.wait(timeout_s=30)
            assert runs.filter._filter.count == stored  # no chunk was read again
        finally:
            runs.close()
    again = SqliteEventLog(path, dedup_memory=0)
    assert again.append([new(f"m{i}") for i in range(400)], []) == 0


def test_a_stored_filter_still_serves_after_a_process_that_never_closed(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first = SqliteEventLog(path, dedup_memory=0)
    first.append([new(f"m{i}") for i in range(100)], [])
    ready_filter(first)
    first.close()
    crashed = SqliteEventLog(path, dedup_memory=0)  # its digests go into newer chunks only
    for start in range(0, 200, 50):
        crashed.append([new(f"n{i}") for i in range(start, start + 50)], [])
    assert table(path, "SELECT merged_seq FROM dedup_state") > 200  # not read back into memory
    later = SqliteEventLog(path, dedup_memory=0)
    ready_filter(later)  # so that only the filter sends keys to be looked up
    assert later.append([new(f"n{i}") for i in range(200)], []) == 0


def test_the_stored_filter_covers_what_another_writer_merged(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    closing = SqliteEventLog(path)
    ready_filter(closing)
    other = SqliteEventLog(path, dedup_memory=0)  # merges what it appends at once
    for start in range(0, 200, 50):
        other.append([new(f"b{i}") for i in range(start, start + 50)], [])
    assert table(path, "SELECT merged_seq FROM dedup_state") > 100
    closing.close()  # stores chunk ids past `other`'s: their digests must be in it
    later = SqliteEventLog(path)
    ready_filter(later)
    assert later.append([new(f"b{i}") for i in range(200)], []) == 0
    other.close()


# A writer in a process of its own, stopped as the collector's commit process can be: closed,
# or killed with nothing stored at its stop. Each group's count of new events goes to stdout.
_WRITER = """
import json, os, signal, sys
from pathlib import Path
from bond.storage.eventlog import NewEvent, SqliteEventLog

path, memory, stop = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
log = SqliteEventLog(path, dedup_memory=memory)
groups = json.load(sys.stdin)
def event(m):
    return NewEvent("web", m, "track", "a", None, "E", 1, 2, None, None, b"{}")
print(json.dumps([log.append([event(m) for m in group], []) for group in groups]), flush=True)
if stop == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
log.close()
"""


def writer(path: Path, groups: list[list[str]], *, stop: str, memory: int) -> list[int]:
    """Append `groups` in a process of its own, then stop it (`clean` or `kill`)."""
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(path), str(memory), stop],
        input=json.dumps(groups),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == (-signal.SIGKILL if stop == "kill" else 0), done.stderr
    return list(json.loads(done.stdout))


def groups_of(prefix: str, count: int, size: int = 50) -> list[list[str]]:
    return [[f"{prefix}{i}" for i in range(s, min(s + size, count))] for s in range(0, count, size)]


def chunks_written(path: Path) -> int:
    return table(
        path, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'dedup_chunks'"
    )


@pytest.mark.parametrize("stop", ["clean", "kill"])
def test_the_first_append_after_restarts_reads_back_and_merges_a_bounded_amount(
    tmp_path: Path, stop: str
) -> None:
    # As the audit found it: restarts in the middle of rounds of merges, each of which used to
    # go back to the offset of the last round that ended and merge its parts all over again.
    path, memory = tmp_path / "events.db", 1_000
    for prefix, count in (("a", 6 * memory), ("b", 3 * memory // 2), ("c", 3 * memory // 2)):
        assert sum(writer(path, groups_of(prefix, count), stop=stop, memory=memory)) == count
    log = SqliteEventLog(path, dedup_memory=memory)
    before = chunks_written(path)
    assert log.append([new("first")], []) == 1
    # A merge writes a chunk or more; a part a chunk here (a few digests each).
    assert chunks_written(path) - before <= 4
    assert log._recent is not None  # white box: what loading read
    # Read back from the rows: nothing after a clean stop, and after a kill about what memory
    # held and what a round takes to come back to the part merged longest ago.
    assert log._recent.loaded <= (0 if stop == "clean" else 3 * memory)
    assert log._recent.count <= 2 * memory
    assert log.append([new(f"{p}{i}") for p in "abc" for i in range(0, 1_500, 7)], []) == 0
    log.close()


def test_duplicates_stay_exact_across_clean_and_hard_restarts(tmp_path: Path) -> None:
    path, memory = tmp_path / "events.db", 500
    sent: list[str] = []
    for n, stop in enumerate(("kill", "clean", "kill", "kill", "clean", "kill")):
        fresh = [f"p{n}-{i}" for i in range(1_200)]
        # Sent again first: long ago (in the runs by now), and just before the stop (in the
        # rows, or in the memory a clean stop stored).
        again = [*sent[::13], *sent[-200:]]
        groups = [[*again[:100], fresh[0]], again[100:], *groups_of(f"p{n}-", 1_200)]
        stored = writer(path, groups, stop=stop, memory=memory)
        assert (stored[0], stored[1], sum(stored)) == (1, 0, 1_200)
        sent += fresh
    log = SqliteEventLog(path, dedup_memory=memory)
    assert log.append([new(m) for m in sent[::5]], []) == 0
    assert sorted(ids(log)) == sorted(sent)
    log.close()


def test_a_backlog_in_memory_is_merged_a_few_parts_an_append(tmp_path: Path) -> None:
    # A log whose one merged offset lagged far behind, as upgraded logs' can: its digests are
    # all read back, and the memory's limit is five times smaller.
    path = tmp_path / "events.db"
    fill(path, 5_000, in_memory=5_000)
    log = SqliteEventLog(path, dedup_memory=1_000)
    for n in range(200):
        before = chunks_written(path)
        assert log.append([new(f"n{n}")], []) == 1
        assert chunks_written(path) - before <= 4  # a part is a chunk here
    assert log._recent is not None and log._recent.count <= 1_000
    history = [new(f"history-{i}")._replace(source="default") for i in range(1, 5_001, 3)]
    assert log.append(history, []) == 0
    log.close()


def test_the_memory_a_clean_stop_stored_serves_until_a_merge_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    writer(path, groups_of("a", 300), stop="clean", memory=10_000)  # no merge: all in memory
    assert table(path, "SELECT length(keys) / 16 FROM dedup_memory") == 300
    # Read back at once, then killed after appends that merged nothing: the next process
    # needs the stored memory and the rows after it.
    assert writer(path, [["a1", "b0"], ["b1", "a299"]], stop="kill", memory=10_000) == [1, 1]
    log = SqliteEventLog(path, dedup_memory=10_000)
    assert log.append([new("a0"), new("b1"), new("c0")], []) == 1
    assert log._recent is not None and log._recent.loaded == 2  # the rows of b0 and b1
    log.close()
    # A merge moves a part's offset past what the stored memory was kept for: it goes.
    assert writer(path, [[f"d{i}" for i in range(20)]], stop="kill", memory=0) == [20]
    assert table(path, "SELECT count(*) FROM dedup_memory") == 0
    log = SqliteEventLog(path, dedup_memory=0)
    assert log.append([new("a5"), new("b0"), new("c0"), new("d7"), new("e0")], []) == 1
    assert sorted(ids(log)) == sorted(
        ["b0", "b1", "c0", "e0", *(f"a{i}" for i in range(300)), *(f"d{i}" for i in range(20))]
    )
    log.close()


def test_a_failed_merge_fails_no_append_and_is_done_by_a_later_one(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path, dedup_memory=10)
    # What a full disk does to the merge's first write, after the append's own commit.
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER no_room BEFORE INSERT ON dedup_chunks "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with captured_logs() as logs:
        assert log.append([new(f"a{i}") for i in range(30)], []) == 30
        assert log.append([new(f"b{i}") for i in range(30)], []) == 30
    assert merged_keys(path) == 0
    [failed] = logs.records("dedup_merge_failed")
    assert "disk is full" in failed["reason"]
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER no_room")
    with captured_logs() as logs:
        assert log.append([new("c0"), new("a3"), new("b29")], []) == 1
    assert logs.records("dedup_merge_recovered")
    # The backlog goes a few parts an append, as after a restart.
    for n in range(1, PARTS):
        assert log.append([new(f"c{n}")], []) == 1
        assert log._recent is not None
        if log._recent.count <= 10:
            break
    assert log._recent.count <= 10
    assert merged_keys(path) >= 50
    log.close()
