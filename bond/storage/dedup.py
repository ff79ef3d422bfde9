"""Which events the log already holds: duplicates found by a digest of (source, messageId).

A unique index on the digest used to do this inside SQLite, and cost more than the rest of a
commit together. Digests are random, so every new event landed on a different page of the index:
a commit of n events wrote n pages of 4 KB to the WAL (then again to the database), reading each
first when it was not cached, whatever the size of the event itself.

Here the digests live in two tiers. The newest are in memory, in 256 parts by their first byte.
The rest are on disk in sorted runs (bond/storage/dedup_runs.py), which the insert checks
through a Bloom filter. When memory holds more than `limit` digests, parts are moved to disk
after a commit, one at a time in turn, each written whole and in key order: a round of merges
writes one run.

Every event row keeps its digest, and `dedup_parts` says, part by part, up to which offset the
runs hold a part's digests, written in the transaction of each part's merge. A process reads back
from the rows only the digests past their part's offset: about what memory held when the last
process stopped or died, whatever the restarts before, rather than every digest since a whole
round last ended. It goes on with the round where it stopped, at the part merged longest ago.
(`dedup_state.merged_seq` is a floor under every part's offset, raised at the end of a round.)
Reading them back scans the rows from the part merged longest ago, about twice the memory's
limit: a process that stops stores its memory's digests in `dedup_memory`, and the next reads
that one blob and only the rows after it. The first merge after deletes it: the part's offset
then says more than it does.
Rows appended by another connection move the log's AUTOINCREMENT counter past the last offset
this process knows of; the insert checks that it has not, and when it has, their digests are
read before trying again.

A digest outlives its event: an erased event sent again is answered as a duplicate and not
stored. Until the runs hold it, the row was where a process that died read it back from, so
whatever deletes events (an erasure, the worker dropping suppressed events, retention) keeps
the digests of those past their part's offset in `dedup_deleted`, in its own transaction, and
the read-back takes them with the rows (`keep_deleted`): the appends pay nothing for it. A
later delete drops those every part's offset has passed. Digests of events that retention has
removed are dropped with their run.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bond.logs import log
from bond.storage.dedup_runs import PARTS, SortedRuns
from bond.storage.keyfilter import KEY_BYTES
from bond.storage.sqlite import write_transaction

# A digest is dropped once it is older than the oldest event kept by this much: the margin covers
# events committed a little out of order of their receipt times.
PRUNE_MARGIN_MS = 86_400_000

# The largest offset the log ever gave out, deleted rows included.
LAST_SEQ = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"

# Parts merged after an append, at least, while memory holds more than its limit; more only
# up to twice the digests the append added. A backlog in memory (after an upgrade from a log
# that kept one merged offset for all parts, or a smaller limit) goes over the appends that
# follow, as the regular merges do, instead of holding up one append for all of it.
MERGES_PER_APPEND = 4

# Each part's merged offset: the floor raises those a log kept from before dedup_parts.
_MERGED_OFFSETS = (
    "SELECT max(p.merged_seq, s.merged_seq) FROM dedup_parts AS p, dedup_state AS s ORDER BY p.part"
)
# The digests of a slice of rows as one blob, concatenated by SQLite: a Python step per row
# cost four times the rest of reading them back (2 s for 500,000 rows here).
_READ_KEYS = (
    "SELECT CAST(group_concat(dedup_key, '') AS BLOB), coalesce(max(received_at), 0) "
    "FROM {} WHERE seq > ? AND seq <= ?"
)
_READ_ROWS = 1 << 16  # rows per slice read back: a blob of 1 MB at most
# A void dtype gives its items back as bytes whole; an "S16" one drops their trailing NULs.
_KEYS = np.dtype(f"V{KEY_BYTES}")


def dedup_key(source: str, message_id: str) -> bytes:
    """What makes two events the same one: a digest of the source and the messageId.

    The BLAKE2b of "<len(source)>:<source>:<messageId>", made from a copy of the hash of the
    source's part, which costs half as much as hashing it all again for every event.
    """
    prefix = _prefixes.get(source)
    if prefix is None:
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        prefix = _prefixes[source] = hashlib.blake2b(
            f"{len(source)}:{source}:".encode(), digest_size=16
        )
    digest = prefix.copy()
    digest.update(message_id.encode())
    return digest.digest()


_prefixes: dict[str, hashlib.blake2b] = {}
_MAX_PREFIXES = 1000  # sources are configured, so a handful; a bound all the same


class RecentKeys:
    """The digests not yet merged into the runs, and the merging of them.

    Used from one thread at a time (the log's writer): the sets are not locked.
    """

    def __init__(self, conn: sqlite3.Connection, runs: SortedRuns, *, limit: int) -> None:
        self._conn = conn
        self._limit = limit
        self.runs = runs
        self._parts: list[set[bytes]] = [set() for _ in range(PARTS)]
        self.count = 0
        self.head = 0  # every event up to this offset has its digest here or in the runs
        self.newest = 0  # the latest receipt time (epoch ms) of an event whose digest is here
        self._next_part = 0
        # Each part's merged offset as this process last read or wrote it.
        self._merged = [0] * PARTS
        self._unwritten: dict[int, int] = {}  # offsets of parts merged empty, not yet recorded
        self.loaded = 0  # digests read back from the rows when loading

    @classmethod
    def load(cls, conn: sqlite3.Connection, path: Path, *, limit: int) -> RecentKeys:
        """The digests of the events past their part's merged offset: those the last process
        stored at its stop, and from the rows after; the runs' filter starts filling from the
        database at `path` in a thread of its own."""
        merged = [int(offset) for (offset,) in conn.execute(_MERGED_OFFSETS)]
        # The runs hold at most a digest per event up to the largest merged offset.
        keys = cls(conn, SortedRuns(conn, path, capacity=max(merged) + limit), limit=limit)
        keys._merged = merged
        # The part merged longest ago is the next in turn: the round goes on where it stopped.
        keys._next_part = merged.index(min(merged))
        stored = conn.execute("SELECT head, newest, keys FROM dedup_memory").fetchone()
        floors = merged
        if stored is not None:
            head, keys.newest, blob = stored
            keys._add_many(np.frombuffer(blob, dtype=_KEYS))
            floors = [max(offset, head) for offset in merged]
        keys._read_back(floors, conn.execute(LAST_SEQ).fetchone()[0])
        return keys

    def _read_back(self, floors: list[int], last: int) -> None:
        """Hold the digests of the rows up to `last` that are past their part's floor."""
        by_part = np.array(floors, dtype=np.int64)
        wanted: list[npt.NDArray[np.void]] = []
        # Between two floors in a row, the parts whose floor is at or below the lower one are
        # the ones whose digests are wanted.
        for low, high in itertools.pairwise(sorted({*floors, last})):
            slices = [
                ("events", start, min(start + _READ_ROWS, high))
                for start in range(low, high, _READ_ROWS)
            ]
            for table, start, end in [*slices, ("dedup_deleted", low, high)]:
                blob, newest = self._conn.execute(_READ_KEYS.format(table), (start, end)).fetchone()
                keys = np.frombuffer(blob or b"", dtype=_KEYS)
                self.loaded += len(keys)
                wanted.append(keys[by_part[_firsts(keys)] <= low])
                self.newest = max(self.newest, newest)
        if wanted:
            self._add_many(np.concatenate(wanted))
        self.head = last

    def _add_many(self, keys: npt.NDArray[np.void]) -> None:
        firsts = _firsts(keys)
        order = np.argsort(firsts, kind="stable")
        ordered = keys[order]
        bounds = np.searchsorted(firsts[order], np.arange(PARTS + 1)).tolist()
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            if start < end:
                part = self._parts[index]
                held = len(part)
                part.update(ordered[start:end].tolist())
                self.count += len(part) - held

    def catch_up(self) -> set[bytes] | None:
        """Hold the digests of rows appended past `head` by anyone, and move `head` to the last
        offset given out. Returns those digests, or None when no offset was given out since."""
        last = self._conn.execute(LAST_SEQ).fetchone()[0]
        if last == self.head:
            return None
        rows = self._conn.execute(
            "SELECT dedup_key, received_at FROM events WHERE seq > ? AND seq <= ?",
            (self.head, last),
        )
        theirs: set[bytes] = set()
        for key, received_at in rows:
            if key is not None:
                theirs.add(bytes(key))
                self.add(bytes(key))
            self.newest = max(self.newest, received_at)
        self.head = last
        return theirs

    def add(self, key: bytes) -> bool:
        """Hold `key`; False when it was already held."""
        part = self._parts[key[0]]
        if key in part:
            return False
        part.add(key)
        self.count += 1
        return True

    def forget(self, keys: Iterable[bytes], head: int) -> None:
        """Undo `add` for keys whose rows were rolled back, and go back to `head`."""
        for key in keys:
            part = self._parts[key[0]]
            if key in part:
                part.remove(key)
                self.count -= 1
        self.head = head

    def merge_if_due(self, added: int) -> None:
        """Move parts into the runs until memory holds no more than the limit, or until this
        append, which added `added` digests, has merged MERGES_PER_APPEND parts and twice its
        digests."""
        budget = 2 * added
        for merges in range(PARTS):
            if self.count <= self._limit or (merges >= MERGES_PER_APPEND and budget <= 0):
                return
            budget -= self.merge_one()

    def merge_one(self) -> int:
        """Write the next part to this round's run, then drop it from memory; returns how many
        digests it held.

        One transaction, with a step of the runs' merging and the part's merged offset: memory
        changes only once it is committed, and a crash before leaves the part where it was, in
        the rows past that offset.
        """
        index = self._next_part
        part = self._parts[index]
        ends_round = index == PARTS - 1
        # An empty part's offset waits for the next merge that writes anything: a merge that
        # writes nothing commits without a sync.
        offsets = {**self._unwritten, index: self.head} if part or ends_round else {}
        with write_transaction(self._conn):
            if index == 0:
                self.runs.begin_round(prune_before=self._oldest_kept_ms() - PRUNE_MARGIN_MS)
            if part:
                self.runs.write(b"".join(part), at=self.newest)
            self.runs.compact_step()
            self._write_offsets(offsets)
            # WHERE: without one SQLite empties the table by rewriting its root page, a write
            # (and a sync) for every merge.
            self._conn.execute("DELETE FROM dedup_memory WHERE 1")
            if ends_round:
                self.runs.end_round()
                self._conn.execute(
                    "UPDATE dedup_state SET merged_seq = "
                    "max(merged_seq, (SELECT min(merged_seq) FROM dedup_parts))"
                )
        if offsets:
            self._unwritten.clear()
        else:
            self._unwritten[index] = self.head
        merged = len(part)
        self.count -= merged
        part.clear()
        self._next_part = (index + 1) % PARTS
        return merged

    def _write_offsets(self, offsets: dict[int, int]) -> None:
        """Record that the runs hold each part's digests up to its offset, in the caller's
        transaction. Another writer may have merged a part further: an offset never moves back.
        (Should the transaction roll back, `_merged` runs ahead of the database, and `close`
        only puts more digests than it needs in the filter.)"""
        self._conn.executemany(
            "UPDATE dedup_parts SET merged_seq = max(merged_seq, ?) WHERE part = ?",
            [(offset, index) for index, offset in offsets.items()],
        )
        for index, offset in offsets.items():
            self._merged[index] = offset

    def close(self) -> None:
        """Store the runs' filter and the memory's digests for the next process, and stop the
        filter's thread."""
        try:
            with write_transaction(self._conn):
                self._write_offsets(self._unwritten)
                self.catch_up()
                merged = [int(offset) for (offset,) in self._conn.execute(_MERGED_OFFSETS)]
                # The next process reads the digests past each part's offset into its memory,
                # and ours are all past it unless another writer moved it: then they go in the
                # filter.
                held = b"".join(
                    b"".join(part)
                    for part, now, ours in zip(self._parts, merged, self._merged, strict=True)
                    if now != ours
                )
                self.runs.save_filter(held)
                self._conn.execute("DELETE FROM dedup_memory")
                self._conn.execute(
                    "INSERT INTO dedup_memory (head, newest, keys) VALUES (?, ?, ?)",
                    (self.head, self.newest, b"".join(map(b"".join, self._parts))),
                )
        except sqlite3.Error as exc:  # the next process reads the runs and rows: slower, right
            log("dedup_filter_not_saved", reason=str(exc))
        self.runs.close()

    def _oldest_kept_ms(self) -> int:
        row = self._conn.execute("SELECT received_at FROM events ORDER BY seq LIMIT 1").fetchone()
        return int(row[0]) if row else 0


def keep_deleted(conn: sqlite3.Connection, rows: Iterable[tuple[int, bytes | None, int]]) -> None:
    """Keep the digests of deleted events, (seq, digest, received_at), that the runs do not hold
    yet, where a process reading back finds them; in the caller's transaction, the delete's.

    Those kept earlier that every part's offset has passed are held by the runs now: they go.
    """
    merged = [int(offset) for (offset,) in conn.execute(_MERGED_OFFSETS)]
    conn.executemany(
        "INSERT OR IGNORE INTO dedup_deleted (seq, dedup_key, received_at) VALUES (?, ?, ?)",
        [(seq, key, at) for seq, key, at in rows if key is not None and seq > merged[key[0]]],
    )
    conn.execute("DELETE FROM dedup_deleted WHERE seq <= ?", (min(merged),))


def _firsts(keys: npt.NDArray[np.void]) -> npt.NDArray[np.uint8]:
    """The first byte of each key: its part."""
    return keys.view(np.uint8)[::KEY_BYTES]
