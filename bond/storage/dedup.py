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

Every event row keeps its digest, and `dedup_state.merged_seq` says up to which offset the runs
hold them all, so a process reloads the rest from the rows on its first append. Rows appended by
another connection move the log's AUTOINCREMENT counter past the last offset this process knows
of; the insert checks that it has not, and when it has, their digests are read before trying
again.

A digest outlives its event: an erased event sent again is answered as a duplicate and not
stored. Digests of events that retention has removed are dropped with their run.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from bond.logs import log
from bond.storage.dedup_runs import PARTS, SortedRuns
from bond.storage.sqlite import write_transaction

# A digest is dropped once it is older than the oldest event kept by this much: the margin covers
# events committed a little out of order of their receipt times.
PRUNE_MARGIN_MS = 86_400_000

# The largest offset the log ever gave out, deleted rows included.
LAST_SEQ = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"


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
        self._round_head = 0  # the head when the merge last started on part 0
        self._merged = 0  # the merged offset as this process last read or wrote it

    @classmethod
    def load(cls, conn: sqlite3.Connection, path: Path, *, limit: int) -> RecentKeys:
        """The digests of the events past the merged offset, read from their rows; the runs'
        filter starts filling from the database at `path` in a thread of its own."""
        merged = conn.execute("SELECT merged_seq FROM dedup_state").fetchone()[0]
        # The runs hold at most a digest per event up to the merged offset.
        keys = cls(conn, SortedRuns(conn, path, capacity=merged + limit), limit=limit)
        keys.head = keys._round_head = keys._merged = merged
        keys.catch_up()
        return keys

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

    def merge_if_due(self) -> None:
        """Move parts into the runs until memory holds no more than the limit."""
        for _ in range(PARTS):
            if self.count <= self._limit:
                return
            self.merge_one()

    def merge_one(self) -> None:
        """Write the next part to this round's run, then drop it from memory.

        One transaction, with a step of the runs' merging: memory changes only once it is
        committed, and a crash before leaves the part where it was, in the rows past the
        merged offset.
        """
        index = self._next_part
        part = self._parts[index]
        ends_round = index == PARTS - 1
        with write_transaction(self._conn):
            if index == 0:
                self._round_head = self.head
                self.runs.begin_round(prune_before=self._oldest_kept_ms() - PRUNE_MARGIN_MS)
            if part:
                self.runs.write(b"".join(part), at=self.newest)
            self.runs.compact_step()
            if ends_round:
                # A whole round merged every digest held when it began.
                self.runs.end_round()
                self._conn.execute("UPDATE dedup_state SET merged_seq = ?", (self._round_head,))
        if ends_round:
            self._merged = self._round_head
        self.count -= len(part)
        part.clear()
        self._next_part = (index + 1) % PARTS

    def close(self) -> None:
        """Store the runs' filter for the next process, and stop its thread."""
        try:
            with write_transaction(self._conn):
                self.catch_up()
                (merged,) = self._conn.execute("SELECT merged_seq FROM dedup_state").fetchone()
                # The next process reads the digests past the merged offset into its memory, and
                # ours are all past it unless another writer moved it: then they go in the filter.
                held = b"".join(map(b"".join, self._parts)) if merged != self._merged else b""
                self.runs.save_filter(held)
        except sqlite3.Error as exc:  # the next process reads the runs instead: slower, right
            log("dedup_filter_not_saved", reason=str(exc))
        self.runs.close()

    def _oldest_kept_ms(self) -> int:
        row = self._conn.execute("SELECT received_at FROM events ORDER BY seq LIMIT 1").fetchone()
        return int(row[0]) if row else 0
