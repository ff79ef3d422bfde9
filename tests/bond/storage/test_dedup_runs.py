"""Sorted runs of digests on disk: written whole, merged a part at a time, never losing one."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bond.storage.dedup import dedup_key
from bond.storage.dedup_runs import (
    CHUNK_KEYS,
    FANOUT,
    PARTS,
    TOP_LEVEL,
    RunFilter,
    SortedRuns,
    write_run,
)
from bond.storage.eventlog import MIGRATIONS, NewEvent, SqliteEventLog
from bond.storage.sqlite import connect, migrate, write_transaction
from conftest import captured_logs


def digests(prefix: str, count: int) -> list[bytes]:
    return [hashlib.blake2b(f"{prefix}{i}".encode(), digest_size=16).digest() for i in range(count)]


# Keys whose bytes trip comparisons that stop at a NUL or strip trailing ones.
AWKWARD = [
    bytes(16),
    b"\x00" * 15 + b"\x01",
    b"ab" + bytes(14),
    b"ab\x00c" + bytes(12),
    b"ab\x00d" + bytes(12),
    b"ab\x00\x00" + bytes(11) + b"\x01",
    b"\xff" * 16,
    b"\xff" * 15 + b"\xfe",
]


def neighbours(key: bytes) -> list[bytes]:
    value = int.from_bytes(key, "big")
    return [(value + d).to_bytes(16, "big") for d in (-1, 1) if 0 <= value + d < 1 << 128]


@pytest.fixture
def log_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "events.db"
    SqliteEventLog(path).close()  # the schema
    yield path


@pytest.fixture
def conn(log_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(log_path)
    yield connection
    connection.close()


@pytest.fixture
def runs(log_path: Path, conn: sqlite3.Connection) -> Iterator[SortedRuns]:
    sorted_runs = SortedRuns(conn, log_path, capacity=10)
    yield sorted_runs
    sorted_runs.close()


def chunks(conn: sqlite3.Connection) -> list[tuple[int, bytes, bytes]]:
    orphans = "SELECT count(*) FROM dedup_chunks WHERE run NOT IN (SELECT run FROM dedup_runs)"
    assert conn.execute(orphans).fetchone()[0] == 0  # a chunk no lookup would ever read
    rows = conn.execute("SELECT run, last, keys FROM dedup_chunks ORDER BY run, last")
    return [(run, bytes(last), bytes(keys)) for run, last, keys in rows]


def assert_chunks_sorted_within_parts(conn: sqlite3.Connection) -> None:
    """Chunks of at most CHUNK_KEYS, each within one part, sorted, ending at their `last`."""
    for _, last, blob in chunks(conn):
        assert 0 < len(blob) <= CHUNK_KEYS * 16
        keys = [blob[at : at + 16] for at in range(0, len(blob), 16)]
        assert {key[0] for key in keys} == {last[0]}
        assert keys == sorted(set(keys)) and keys[-1] == last


def stored_keys(conn: sqlite3.Connection) -> list[bytes]:
    return [keys[at : at + 16] for _, _, keys in chunks(conn) for at in range(0, len(keys), 16)]


def levels(conn: sqlite3.Connection) -> Counter[int]:
    return Counter(row[0] for row in conn.execute("SELECT level FROM dedup_runs WHERE complete"))


def one_round(runs: SortedRuns, conn: sqlite3.Connection, keys: list[bytes], at: int = 5) -> None:
    """A round of merges as RecentKeys makes it: every part in turn, a compaction step each."""
    with write_transaction(conn):
        runs.begin_round(prune_before=0)
        for part in range(PARTS):
            mine = [key for key in keys if key[0] == part]
            if mine:
                runs.write(b"".join(mine), at=at)
            runs.compact_step()
        runs.end_round()


def rounds(
    runs: SortedRuns, conn: sqlite3.Connection, first: int, last: int, size: int
) -> list[bytes]:
    """Rounds `first` to `last` - 1 of `size` new digests each; returns the digests."""
    written: list[bytes] = []
    for round_ in range(first, last):
        written += digests(f"r{round_}-", size)
        one_round(runs, conn, written[-size:])
    return written


def test_a_run_holds_exactly_its_keys_whatever_their_bytes(
    log_path: Path, conn: sqlite3.Connection
) -> None:
    crowded = [b"\x07" + key[1:] for key in digests("seven", 2 * CHUNK_KEYS + 10)]  # 3 chunks
    keys = [*digests("k", 5_000), *AWKWARD, *crowded]
    with write_transaction(conn):
        write_run(conn, b"".join(reversed(keys)) + keys[0], level=0, at=1)
    assert_chunks_sorted_within_parts(conn)
    assert stored_keys(conn) == sorted(set(keys))

    runs = SortedRuns(conn, log_path, capacity=10)  # its filter reads the run written
    try:
        some = [*keys[:500], *AWKWARD, *crowded[CHUNK_KEYS - 5 : CHUNK_KEYS + 5]]
        others = [n for key in some for n in neighbours(key) if n not in keys]
        assert runs.probe([*keys, *others]) == set(keys)
        assert runs.filter.wait(timeout_s=30)
        assert runs.held([*others, *keys]) == set(keys)
        assert runs.held(AWKWARD[:3] + others[:3]) == set(AWKWARD[:3])  # few: key by key
    finally:
        runs.close()


def test_the_filter_reads_every_chunk_a_few_at_a_time(
    log_path: Path, conn: sqlite3.Connection
) -> None:
    keys = digests("k", 20_000)
    with write_transaction(conn):
        for start in range(0, len(keys), 5_000):
            write_run(conn, b"".join(keys[start : start + 5_000]), level=0, at=1)
    run_filter = RunFilter(log_path, capacity=10, slice_chunks=3)  # grows as it reads
    try:
        assert run_filter.wait(timeout_s=30)
        assert all(run_filter.maybe(b"".join(keys)))
        assert sum(run_filter.maybe(b"".join(digests("absent", 20_000)))) < 400
    finally:
        run_filter.close()


def test_digests_written_after_the_filter_filled_are_in_it(
    runs: SortedRuns, conn: sqlite3.Connection
) -> None:
    assert runs.filter.wait(timeout_s=30)
    later = digests("later", 100)
    assert runs.held(later) == set()
    one_round(runs, conn, later)
    assert runs.held(later) == set(later)


def test_runs_are_merged_level_by_level_and_keep_every_digest(
    runs: SortedRuns, conn: sqlite3.Connection
) -> None:
    written: list[bytes] = []
    for round_ in range(FANOUT**TOP_LEVEL + 6):
        written += rounds(runs, conn, round_, round_ + 1, 40)
        # A level holds at most FANOUT runs between rounds: one merge at a time keeps up.
        assert all(count <= FANOUT for level, count in levels(conn).items() if level < 3)
    assert levels(conn)[TOP_LEVEL] == 1
    assert sorted(stored_keys(conn)) == sorted(written)  # every digest, each once
    assert_chunks_sorted_within_parts(conn)
    assert runs.probe(written[::7]) == set(written[::7])
    assert not conn.execute("SELECT 1 FROM dedup_runs WHERE target IS NOT NULL").fetchall()


def test_a_merge_rolled_back_half_way_loses_no_digest(
    runs: SortedRuns, conn: sqlite3.Connection
) -> None:
    written = rounds(runs, conn, 0, FANOUT, 300)
    # The next round starts merging the four runs; it fails half way and is rolled back.
    with pytest.raises(OSError), write_transaction(conn):
        runs.begin_round(prune_before=0)
        for _ in range(PARTS // 2):
            runs.compact_step()
        raise OSError("disk full")
    written += rounds(runs, conn, FANOUT, FANOUT + 2, 300)
    assert sorted(stored_keys(conn)) == sorted(written)
    assert runs.probe(written) == set(written)
    assert levels(conn) == {1: 1, 0: 2}


def test_a_run_another_writer_takes_into_a_merge_is_written_no_more(
    log_path: Path, conn: sqlite3.Connection
) -> None:
    ours = SortedRuns(conn, log_path, capacity=10)
    other_conn = connect(log_path)
    theirs = SortedRuns(other_conn, log_path, capacity=10)
    try:
        written = rounds(ours, conn, 0, FANOUT - 1, 300)
        early, late = digests("early", 300), digests("late", 300)
        with write_transaction(conn):
            ours.begin_round(prune_before=0)
            ours.write(b"".join(early), at=5)  # this round's run, open
        # The other writer closes it and merges it with the three before, all but one part.
        with write_transaction(other_conn):
            theirs.begin_round(prune_before=0)
            for _ in range(PARTS - 1):
                theirs.compact_step()
        with write_transaction(conn):
            ours.write(b"".join(late), at=5)  # into a run of its own
            ours.compact_step()  # the last part: the four runs are gone
            ours.end_round()
        written += early + late
        assert levels(conn) == {1: 1, 0: 1}
        assert sorted(stored_keys(conn)) == sorted(written)
        assert ours.probe(written) == set(written)
    finally:
        theirs.close()
        other_conn.close()
        ours.close()


def test_a_new_process_goes_on_with_a_merge_left_half_done(
    log_path: Path, conn: sqlite3.Connection
) -> None:
    first = SortedRuns(conn, log_path, capacity=10)
    written = rounds(first, conn, 0, FANOUT, 300)
    with write_transaction(conn):
        first.begin_round(prune_before=0)
        written += digests("open-", 50)
        first.write(b"".join(written[-50:]), at=5)  # a round left open, all parts at once
        for _ in range(PARTS // 2):
            first.compact_step()
    first.close()

    second = SortedRuns(conn, log_path, capacity=10)
    try:
        assert second.probe(written) == set(written)  # half merged, half not: all there
        one_round(second, conn, [])
        assert second.probe(written) == set(written)
        # The merge finished; the open run counts as a complete one.
        assert levels(conn) == {1: 1, 0: 1}
        assert sorted(stored_keys(conn)) == sorted(written)
        assert_chunks_sorted_within_parts(conn)
    finally:
        second.close()


def test_runs_older_than_the_oldest_event_kept_are_dropped(
    runs: SortedRuns, conn: sqlite3.Connection
) -> None:
    old, recent = digests("old", 100), digests("recent", 100)
    one_round(runs, conn, old, at=1_000)
    one_round(runs, conn, recent, at=2_000)
    with write_transaction(conn):
        runs.begin_round(prune_before=1_500)
        runs.end_round()
    assert runs.probe([*old, *recent]) == set(recent)


def test_a_log_with_the_digest_table_moves_it_into_one_top_level_run(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    old = connect(path)
    old.create_function("bond_dedup_key", 2, dedup_key, deterministic=True)
    migrate(old, MIGRATIONS[:4], name="event log")
    old.executemany(
        "INSERT INTO events (source, message_id, type, timestamp, received_at, body, dedup_key) "
        "VALUES ('web', ?, 'track', 1, ?, x'7b7d', ?)",
        [(f"m{i}", 1_000 + i, dedup_key("web", f"m{i}")) for i in range(3_000)],
    )
    old.execute("INSERT INTO dedup SELECT dedup_key, received_at FROM events WHERE seq <= 2500")
    old.execute("UPDATE dedup_state SET merged_seq = 2500")
    old.close()

    log = SqliteEventLog(path)
    event = NewEvent("web", "m0", "track", "a", None, "E", 1, 2, None, None, b"{}")
    again = [event._replace(message_id=f"m{i}") for i in range(0, 3_000, 7)]
    assert log.append([*again, event._replace(message_id="new")], []) == 1
    log.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT level, at, complete FROM dedup_runs").fetchall() == [
            (TOP_LEVEL, 1_000 + 2_499, 1)
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "dedup" not in tables
        assert stored_keys(conn) == sorted(dedup_key("web", f"m{i}") for i in range(2_500))
        assert_chunks_sorted_within_parts(conn)


@pytest.mark.parametrize(
    ("count", "bits", "reason"),
    [
        (1, bytes(1000), "a power of two bytes"),
        (10**6, bytes(1 << 16), "many digests the runs no longer hold"),
    ],
)
def test_a_stored_filter_that_cannot_serve_is_set_aside_for_the_runs(
    log_path: Path,
    conn: sqlite3.Connection,
    count: int,
    bits: bytes,
    reason: str,
) -> None:
    keys = digests("k", 300)
    write_run(conn, b"".join(keys), level=0, at=1)
    # Were it used, no chunk would be read (they all come before `upto`) and no key found.
    conn.execute("INSERT INTO dedup_filter VALUES (0, 1000000000, ?, ?)", (count, bits))
    with captured_logs() as logged:
        runs = SortedRuns(conn, log_path, capacity=10)
    try:
        assert runs.filter.wait(timeout_s=30)
        assert all(runs.filter.maybe(b"".join(keys)))
    finally:
        runs.close()
    assert reason in logged.records("dedup_filter_not_used")[0]["reason"]
