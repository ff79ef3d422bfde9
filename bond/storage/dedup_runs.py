"""The digests merged out of memory, on disk: sorted runs written whole, found through a filter.

A table keyed by digest (a B-tree) cost a B-tree insert per digest on every merge, 3-6 µs of the
commit process's time for each event, and with the table at L pages about L / 200,000 page
writes per digest: as many as a unique index once a log holds tens of millions of events.

Here a merge writes a part's digests, sorted, as blobs of CHUNK_KEYS: chunks of a run. A run is
what one round of merges wrote, in key order. Runs are merged FANOUT at a time into one of the
next level, a part per step, so a digest is rewritten at most TOP_LEVEL times in all. Each step
reads and writes whole blobs and sorts them with numpy, a few tenths of a µs per digest.

The price is the lookup. A digest may be in any run, and finding it there costs a seek in each,
so the lookups go through a Bloom filter of every digest in the runs (`RunFilter`): only the
about 1% of keys it cannot rule out, and true duplicates sent long after, are looked up.

Retention drops whole runs, once the newest event whose digest a run holds is older than the
oldest event kept. Runs of the top level are not merged further, so that this happens at all:
a digest outlives its event by at most the time it takes to fill one.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bond.logs import log
from bond.storage.keyfilter import KEY_BYTES, MIN_CAPACITY, KeyFilter
from bond.storage.sqlite import connect

PARTS = 256  # a part is the digests of one first byte: merges and compactions go a part a time
FANOUT = 4
TOP_LEVEL = 3  # runs of 4**3 rounds of merges: 12,800,000 digests with 200,000 in memory
# Digests per blob: 2 KB, which SQLite keeps in the row's own page. A lookup reads one blob per
# run, and 16 KB blobs, on a chain of overflow pages, made it half again as dear.
CHUNK_KEYS = 128

_PROBE = (
    "SELECT (SELECT keys FROM dedup_chunks WHERE run = r.run AND last >= ? ORDER BY last LIMIT 1) "
    "FROM dedup_runs AS r"
)
_INSERT_CHUNK = "INSERT INTO dedup_chunks (run, last, keys) VALUES (?, ?, ?)"
# The bytes of 16-byte strings compare as memcmp does: the order of the chunks' `last` column.
_KEYS = np.dtype(f"S{KEY_BYTES}")


class SortedKeys:
    """An SQL aggregate: the distinct digests of a group as one blob in key order (migrations)."""

    def __init__(self) -> None:
        self._keys: list[bytes] = []

    def step(self, key: bytes) -> None:
        self._keys.append(key)

    def finalize(self) -> bytes:
        return _union(self._keys)


class SortedRuns:
    """The runs of one event log. Every call is part of the caller's transaction, and all the
    state that outlives one is in the database: a rolled-back transaction leaves nothing to
    undo, and another process writing the same log (or one that stopped mid-way) is taken up
    where it left off."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, capacity: int) -> None:
        self._conn = conn
        saved, upto = _saved_filter(conn)
        self.filter = RunFilter(path, capacity=capacity, saved=saved, after=upto)
        self._open: int | None = None  # the run this round of merges writes, when it still is

    def begin_round(self, *, prune_before: int) -> None:
        """Drop the runs retention has passed, and start merging runs if a level is full."""
        # A run left open (by a process that stopped, or a round whose end was rolled back)
        # holds digests like any other. Another writer's open run is closed too, which is safe:
        # that writer starts a new one once a merge takes it (see `write`).
        self._conn.execute(
            "UPDATE dedup_runs SET complete = 1 WHERE NOT complete "
            "AND run NOT IN (SELECT target FROM dedup_runs WHERE target IS NOT NULL)"
        )
        self._drop_older(prune_before)
        if self._compaction() is None:
            self._start_compaction()

    def write(self, keys: bytes, *, at: int) -> None:
        """Add a part's digests, in any order, to this round's run; `at` is the receipt time of
        the newest event among them or before."""
        if (
            self._open is None
            or not self._conn.execute(
                "SELECT 1 FROM dedup_runs WHERE run = ? AND target IS NULL", (self._open,)
            ).fetchone()
        ):
            # Rolled back, or taken into a merge by another writer: a run a merge reads from must
            # not change under it.
            self._open = _new_run(self._conn, level=0, at=at, complete=False)
        _write_sorted(self._conn, self._open, _union([keys]))
        self._conn.execute("UPDATE dedup_runs SET at = max(at, ?) WHERE run = ?", (at, self._open))
        self.filter.add(keys)

    def end_round(self) -> None:
        if self._open is not None:
            self._conn.execute("UPDATE dedup_runs SET complete = 1 WHERE run = ?", (self._open,))
            self._open = None

    def compact_step(self) -> None:
        """Merge the next part of the runs being merged, if any are."""
        found = self._compaction()
        if found is None:
            return
        target, part = found
        sources = [
            int(run)
            for (run,) in self._conn.execute(
                "SELECT run FROM dedup_runs WHERE target = ?", (target,)
            )
        ]
        marks = ",".join("?" * len(sources))
        where = f"run IN ({marks}) AND last >= ? AND last < ?"
        bounds = [*sources, bytes([part]), _part_end(part)]
        chunks = [
            chunk
            for (chunk,) in self._conn.execute(
                f"SELECT keys FROM dedup_chunks WHERE {where}", bounds
            )
        ]
        if chunks:
            _write_sorted(self._conn, target, _union(chunks))
            self._conn.execute(f"DELETE FROM dedup_chunks WHERE {where}", bounds)
        if part + 1 < PARTS:
            self._conn.execute("UPDATE dedup_runs SET merged = ? WHERE run = ?", (part + 1, target))
            return
        self._conn.execute(f"DELETE FROM dedup_runs WHERE run IN ({marks})", sources)
        self._conn.execute("UPDATE dedup_runs SET complete = 1 WHERE run = ?", (target,))

    def held(self, keys: Sequence[bytes]) -> set[bytes]:
        """Which of `keys` the runs hold: those the filter cannot rule out, looked up."""
        if not self.filter.ready:
            return self.probe(keys)
        maybe = self.filter.maybe(b"".join(keys))
        return self.probe([key for key, found in zip(keys, maybe, strict=True) if found])

    def probe(self, keys: Sequence[bytes]) -> set[bytes]:
        """Which of `keys` the runs hold, looked up in each run: a seek and a 2 KB read."""
        return {
            key
            for key in keys
            if any(
                chunk is not None and _contains(chunk, key)
                for (chunk,) in self._conn.execute(_PROBE, (key,))
            )
        }

    def save_filter(self, held: bytes) -> None:
        """Store the filter for the next process, with `held`, every digest not in the runs.

        Call in a transaction that holds the write lock and after reading every event appended:
        then each digest in a chunk written so far is in what is stored, even one another writer
        merged, and the next process reads only the chunks written after (see RunFilter).
        """
        if not self.filter.ready:
            return  # what was stored before stays right: it covers the chunks up to its own
        self.filter.add(held)
        (upto,) = self._conn.execute(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'dedup_chunks'), 0)"
        ).fetchone()
        self._conn.execute("DELETE FROM dedup_filter")
        self._conn.executemany(
            "INSERT INTO dedup_filter (part, upto, count, bits) VALUES (?, ?, ?, ?)",
            [(part, upto, count, bits) for part, (count, bits) in enumerate(self.filter.saved())],
        )

    def close(self) -> None:
        self.filter.close()

    def _compaction(self) -> tuple[int, int] | None:
        """The run being merged into and how many of its parts are merged, if one is."""
        row = self._conn.execute(
            "SELECT run, merged FROM dedup_runs WHERE run = "
            "(SELECT target FROM dedup_runs WHERE target IS NOT NULL LIMIT 1)"
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def _drop_older(self, before: int) -> None:
        old = "SELECT run FROM dedup_runs WHERE at < ? AND complete AND target IS NULL"
        self._conn.execute(f"DELETE FROM dedup_chunks WHERE run IN ({old})", (before,))
        self._conn.execute(f"DELETE FROM dedup_runs WHERE run IN ({old})", (before,))

    def _start_compaction(self) -> None:
        row = self._conn.execute(
            "SELECT level, max(at) FROM dedup_runs WHERE complete AND target IS NULL "
            "AND level < ? GROUP BY level HAVING count(*) >= ? ORDER BY level LIMIT 1",
            (TOP_LEVEL, FANOUT),
        ).fetchone()
        if row is not None:
            target = _new_run(self._conn, level=row[0] + 1, at=row[1], complete=False)
            self._conn.execute(
                "UPDATE dedup_runs SET target = ? WHERE level = ? AND complete AND target IS NULL",
                (target, row[0]),
            )


def write_run(conn: sqlite3.Connection, keys: bytes, *, level: int, at: int) -> None:
    """Store `keys` (16 bytes each, in any order) as a complete run of `level`."""
    _write_sorted(conn, _new_run(conn, level=level, at=at, complete=True), _union([keys]))


def _new_run(conn: sqlite3.Connection, *, level: int, at: int, complete: bool) -> int:
    cursor = conn.execute(
        "INSERT INTO dedup_runs (level, at, complete) VALUES (?, ?, ?)", (level, at, complete)
    )
    return int(cursor.lastrowid or 0)


def _saved_filter(conn: sqlite3.Connection) -> tuple[KeyFilter | None, int]:
    """The filter a process stored at its close and the last chunk it covers, when usable."""
    rows = conn.execute("SELECT upto, count, bits FROM dedup_filter ORDER BY part").fetchall()
    if not rows:
        return None, 0
    # Digests stay in the filter after retention drops their runs: past twice what the runs
    # can hold, reading the runs again makes a smaller filter with fewer false positives.
    (chunks,) = conn.execute("SELECT count(*) FROM dedup_chunks").fetchone()
    stored = sum(count for _, count, _ in rows)
    if stored > 2 * max(chunks * CHUNK_KEYS, MIN_CAPACITY):
        log("dedup_filter_not_used", reason="it holds many digests the runs no longer hold")
        return None, 0
    try:
        return KeyFilter.restored([(count, bits) for _, count, bits in rows]), int(rows[0][0])
    except ValueError as exc:
        log("dedup_filter_not_used", reason=str(exc))
        return None, 0


def _write_sorted(conn: sqlite3.Connection, run: int, keys: bytes) -> None:
    """Store sorted `keys` in chunks of the run, none across two parts, so that a compaction
    finds a part's keys by the chunks' `last` alone."""
    firsts = np.frombuffer(keys, dtype=np.uint8)[::KEY_BYTES]
    bounds = (np.searchsorted(firsts, np.arange(PARTS + 1)) * KEY_BYTES).tolist()
    size = CHUNK_KEYS * KEY_BYTES
    chunks = [
        keys[start : min(start + size, end)]
        for first, end in itertools.pairwise(bounds)
        for start in range(first, end, size)
    ]
    conn.executemany(_INSERT_CHUNK, [(run, chunk[-KEY_BYTES:], chunk) for chunk in chunks])


def _union(chunks: Sequence[bytes]) -> bytes:
    """The distinct keys of `chunks` in key order, as one blob."""
    keys = np.sort(np.frombuffer(b"".join(chunks), dtype=_KEYS), kind="stable")
    if len(keys) < 2:
        return keys.tobytes()
    distinct = np.empty(len(keys), dtype=bool)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return keys[distinct].tobytes()


def _contains(chunk: bytes, key: bytes) -> bool:
    """Whether sorted `chunk` holds `key`. (bisect with a key function that slices the chunk
    costs twice this loop: 5 against 2.7 µs over 128 digests.)"""
    low, high = 0, len(chunk) // KEY_BYTES
    while low < high:
        middle = (low + high) // 2
        found = chunk[middle * KEY_BYTES : (middle + 1) * KEY_BYTES]
        if found == key:
            return True
        if found < key:
            low = middle + 1
        else:
            high = middle
    return False


def _part_end(index: int) -> bytes:
    # The first key past the part: keys are 16 bytes, so 17 bytes of 0xff is past the last part.
    return bytes([index + 1]) if index + 1 < PARTS else b"\xff" * 17


_FILL_CHUNKS = 512  # chunks read per statement while filling: about 65,000 digests


class RunFilter:
    """Which digests the runs certainly lack, so that their lookups are skipped.

    Every digest in the runs must be in the filter, or a duplicate would be stored twice. So a
    thread of its own reads the runs' chunks into it, in the order they were written and some at
    a time on a connection of its own, while every merge adds its part; until the reading is
    done, `ready` is False and every key is looked up. A chunk written while the thread reads
    comes after those it has read (a compaction's too: its digests are read again, which does
    no harm). A digest dropped with its run stays in the filter, which costs it a lookup, nothing
    more. Memory: 10 to 20 bits per digest (a power of two in all: 67 MB for 30 million events).

    Reading every run took 5 s on 6,000,000 events, seconds in which a commit process just
    restarted looks every key up. So a closing process stores its filter (`save_filter`) with the
    last chunk id it covers, and the next starts from it (`saved`) and reads only the chunks
    written `after`: chunk ids only grow, so those are all the chunks it may lack.
    """

    def __init__(
        self,
        path: Path,
        *,
        capacity: int,
        slice_chunks: int = _FILL_CHUNKS,
        saved: KeyFilter | None = None,
        after: int = 0,
    ) -> None:
        self._filter = saved if saved is not None else KeyFilter(capacity)
        self._after = after
        self._slice_chunks = slice_chunks
        self._lock = threading.Lock()  # adds from the merges and from the reading thread
        self._stop = threading.Event()
        self._filled = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(path,), name="bond-dedup-filter", daemon=True
        )
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._filled.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Block until the runs' digests are all in the filter; False on the timeout."""
        return self._filled.wait(timeout_s)

    def add(self, keys: bytes) -> None:
        with self._lock:
            self._filter.add(keys)

    def maybe(self, keys: bytes) -> list[bool]:
        return self._filter.maybe(keys)

    def saved(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return self._filter.saved()

    def _fill(self, path: Path) -> None:
        try:
            conn = connect(path)
            try:
                last = self._after
                while not self._stop.is_set():
                    rows = conn.execute(
                        "SELECT id, keys FROM dedup_chunks WHERE id > ? ORDER BY id LIMIT ?",
                        (last, self._slice_chunks),
                    ).fetchall()
                    if not rows:
                        self._filled.set()
                        return
                    last = rows[-1][0]
                    self.add(b"".join(chunk for _, chunk in rows))
            finally:
                conn.close()
        except Exception as exc:  # the lookups go on without it: slower, still right
            log("dedup_filter_failed", reason=str(exc))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
