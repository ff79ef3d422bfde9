"""Which events the log already holds: duplicates found by a digest of (source, messageId).

A unique index on the digest used to do this inside SQLite, and cost more than the rest of a
commit together. Digests are random, so every new event landed on a different page of the index:
a commit of n events wrote n pages of 4 KB to the WAL (then again to the database), reading each
first when it was not cached, whatever the size of the event itself.

Here the digests live in two tiers. The newest are in memory, in 256 parts by their first byte.
The rest are in the `dedup` table, which the insert checks with NOT EXISTS (a read, which writes
nothing). When memory holds more than `limit` digests, parts are merged into the table after a
commit, one at a time in turn and each in key order, until memory holds no more than `limit`:
a page of the table is written once for all the digests of a part landing on it.
With the table at L pages, a digest costs about L / limit page writes instead of one.

The check is a B-tree seek for every new event, about as dear as the rest of its insert, and
it nearly always finds nothing. A Bloom filter over the table's keys (`TableFilter`) lets a
large group skip it for every key the filter has certainly never seen.

Each digest in the table is stamped with a receipt time no earlier than its event's (the newest
this process has seen when it merged it): retention compares these with the oldest event kept.

Memory is not the only record: every event row keeps its digest, and `dedup_state.merged_seq`
says up to which offset the table holds them all, so a process reloads the rest from the rows on
its first append. Rows appended by another connection move the log's AUTOINCREMENT counter past
the last offset this process knows of; the insert checks that it has not, and when it has,
their digests are read before trying again.

A digest outlives its event: an erased event sent again is answered as a duplicate and not
stored. Digests of events that retention has removed are pruned when their part is next merged.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from bond.errors import StorageError
from bond.logs import log
from bond.storage.keyfilter import KEY_BYTES, KeyFilter
from bond.storage.sqlite import connect

PARTS = 256
# A digest is dropped once it is older than the oldest event kept by this much: the margin covers
# events committed a little out of order of their receipt times.
PRUNE_MARGIN_MS = 86_400_000

_MERGE = (
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
    "INSERT OR IGNORE INTO dedup (key, at) SELECT substr(?, i * 16 + 1, 16), ? FROM n"
)
_PRUNE = "DELETE FROM dedup WHERE key >= ? AND key < ? AND at < ?"
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
    """The digests not yet merged into the `dedup` table, and the merging of them.

    Used from one thread at a time (the log's writer): the sets are not locked.
    """

    def __init__(
        self, conn: sqlite3.Connection, *, limit: int, table: TableFilter | None = None
    ) -> None:
        self._conn = conn
        self._limit = limit
        self.table = table
        self._parts: list[set[bytes]] = [set() for _ in range(PARTS)]
        self.count = 0
        self.head = 0  # every event up to this offset has its digest here or in the table
        self.newest = 0  # the latest receipt time (epoch ms) of an event whose digest is here
        self._next_part = 0
        self._cycle_head = 0  # the head when the merge last started on part 0
        self._prune_before = 0
        self._pruned: list[int] = [0] * PARTS

    @classmethod
    def load(cls, conn: sqlite3.Connection, path: Path, *, limit: int) -> RecentKeys:
        """The digests of the events past the merged offset, read from their rows; the table's
        filter starts filling from the database at `path` in a thread of its own."""
        merged = conn.execute("SELECT merged_seq FROM dedup_state").fetchone()[0]
        # The table holds at most a digest per event up to the merged offset.
        keys = cls(conn, limit=limit, table=TableFilter(path, capacity=merged + limit))
        keys.head = keys._cycle_head = merged
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
        """Move parts into the table until memory holds no more than the limit."""
        for _ in range(PARTS):
            if self.count <= self._limit:
                return
            self.merge_one()

    def merge_one(self) -> None:
        """Merge the next part into the table, in key order, then drop it from memory.

        Each statement commits on its own: a crash between them leaves digests both in the
        table and in the rows past the merged offset, which is harmless.
        """
        index = self._next_part
        if index == 0:
            self._cycle_head = self.head
            self._prune_before = self._oldest_kept_ms() - PRUNE_MARGIN_MS
        part = self._parts[index]
        if part:
            merged = b"".join(sorted(part))
            self._conn.execute(_MERGE, (len(part), merged, self.newest))
            if self.table is not None:
                self.table.add(merged)
        if self._prune_before > self._pruned[index]:
            self._conn.execute(_PRUNE, (bytes([index]), _part_end(index), self._prune_before))
            self._pruned[index] = self._prune_before
        self.count -= len(part)
        part.clear()
        self._next_part = (index + 1) % PARTS
        if self._next_part == 0:
            # A whole round merged every digest held when it began.
            self._conn.execute("UPDATE dedup_state SET merged_seq = ?", (self._cycle_head,))

    def close(self) -> None:
        if self.table is not None:
            self.table.close()

    def _oldest_kept_ms(self) -> int:
        row = self._conn.execute("SELECT received_at FROM events ORDER BY seq LIMIT 1").fetchone()
        return int(row[0]) if row else 0


def _part_end(index: int) -> bytes:
    # The first key past the part: keys are 16 bytes, so 17 bytes of 0xff is past the last part.
    return bytes([index + 1]) if index + 1 < PARTS else b"\xff" * 17


# Below this many keys, numpy's fixed cost per call is about that of looking them up in SQLite.
FILTERED_GROUP = 32
_FILL_SLICE = 65_536  # keys read from the table per statement while filling
# A slice's keys as one blob, concatenated by SQLite: no object per key, and no work with the
# GIL held that the commit process's main thread is waiting for. (group_concat copies a blob's
# bytes as they are into its text; the cast takes them back. The count checks that it did.)
_FILL_SLICE_SQL = (
    "SELECT CAST(group_concat(key, '') AS BLOB), max(key), count(*) FROM "
    "(SELECT key FROM dedup WHERE key > ? ORDER BY key LIMIT ?)"
)


class TableFilter:
    """Which digests the `dedup` table certainly lacks, so that large groups skip its lookups.

    Every key in the table must be in the filter, or a duplicate would be stored twice. So a
    thread of its own reads the table's keys into it, in key order and a slice at a time on a
    connection of its own, while every merge adds its part; until the reading is done, `held`
    answers None and every key is looked up as before. A key that retention prunes from the
    table stays in the filter, which costs it a lookup, nothing more. Memory: 10 to 20 bits per
    event up to the merged offset (a power of two in all: 67 MB for 30 million events).
    """

    def __init__(self, path: Path, *, capacity: int, slice_keys: int = _FILL_SLICE) -> None:
        self._filter = KeyFilter(capacity)
        self._slice_keys = slice_keys
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
        """Block until the table's keys are all in the filter; False on the timeout."""
        return self._filled.wait(timeout_s)

    def add(self, keys: bytes) -> None:
        with self._lock:
            self._filter.add(keys)

    def held(self, conn: sqlite3.Connection, keys: Sequence[bytes]) -> set[bytes] | None:
        """Which of `keys` the table holds, looking up only those the filter may have seen;
        None when the caller must look them all up (the filter is not filled, or they are few).
        """
        if not self.ready or len(keys) < FILTERED_GROUP:
            return None
        maybe = self._filter.maybe(b"".join(keys))
        candidates = [bytearray(key) for key, found in zip(keys, maybe, strict=True) if found]
        if not candidates:
            return set()
        rows = conn.execute(
            f"SELECT key FROM dedup WHERE key IN ({','.join('?' * len(candidates))})", candidates
        )
        return {bytes(row[0]) for row in rows}

    def _fill(self, path: Path) -> None:
        try:
            conn = connect(path)
            try:
                last = b""
                while not self._stop.is_set():
                    query = conn.execute(_FILL_SLICE_SQL, (last, self._slice_keys))
                    found, last, count = query.fetchone()
                    if not count:
                        self._filled.set()
                        return
                    if len(found) != count * KEY_BYTES:
                        raise StorageError(f"read {len(found)} bytes for {count} digests")
                    self.add(found)
            finally:
                conn.close()
        except Exception as exc:  # the lookups go on without it: slower, still right
            log("dedup_filter_failed", reason=str(exc))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
