"""The event log: an append-only sequence of accepted events, read by offset.

The collector appends; the engine reads after the offset it has durably applied. The interface is
two calls wide so a scale-out log (Kafka, Redis Streams, PostgreSQL) can stand in for SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

from bond.errors import StorageError
from bond.outage import Outage
from bond.storage.dedup import LAST_SEQ, RecentKeys, dedup_key, keep_deleted
from bond.storage.dedup_runs import CHUNK_KEYS, PARTS, TOP_LEVEL, SortedKeys
from bond.storage.sqlite import (
    connect,
    data_version,
    migrate,
    wait_for_commit,
    write_transaction,
)


class NewEvent(NamedTuple):
    """An accepted event as the collector stores it: routing columns plus the body as sent."""

    source: str
    message_id: str
    type: str
    anonymous_id: str | None
    user_id: str | None
    event: str | None
    timestamp: int  # UTC epoch ms, clock skew corrected
    received_at: int  # UTC epoch ms
    ip: str | None
    user_agent: str | None
    body: bytes  # the event's JSON exactly as the client sent it


class StoredEvent(NamedTuple):
    seq: int  # the offset: strictly increasing, never reused
    source: str
    message_id: str
    type: str
    anonymous_id: str | None
    user_id: str | None
    event: str | None
    timestamp: int
    received_at: int
    ip: str | None
    user_agent: str | None
    body: bytes


class RejectedEvent(NamedTuple):
    """An event refused, kept with its reason so nothing vanishes silently.

    `message_id` ties the row to an event stored all the same (an identify whose identity was
    refused is kept as an anonymous event): the row is written only when that event is new, so
    an event sent again (a retry, a beacon's events re-sent by the next page) is refused once.
    """

    source: str | None
    received_at: int
    reason: str
    body: bytes
    message_id: str | None = None


class LogMatch(NamedTuple):
    """The events of one person, for erasure and export (see engine/privacy/plan.py)."""

    anonymous_ids: Sequence[str]  # every event of these browsers
    user_ids: Sequence[str]  # every event carrying one of these user ids
    ranges: Sequence[tuple[str, int, int]]  # (anonymous id, start, end): a shared browser's part
    needles: Sequence[str]  # lowercase text (an email) whose presence in a body is enough

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if self.anonymous_ids:
            clauses.append(f"anonymous_id IN ({','.join('?' * len(self.anonymous_ids))})")
            params += self.anonymous_ids
        if self.user_ids:
            clauses.append(f"user_id IN ({','.join('?' * len(self.user_ids))})")
            params += self.user_ids
        for anonymous_id, start, end in self.ranges:
            clauses.append("(anonymous_id = ? AND timestamp >= ? AND timestamp < ?)")
            params += [anonymous_id, start, end]
        for needle in self.needles:
            clauses.append("instr(lower(CAST(body AS TEXT)), ?) > 0")
            params.append(needle)
        return " OR ".join(clauses) or "0", params


class EventLog(Protocol):
    def append(self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> int:
        """Commit a batch; returns how many events were new (the rest were duplicates)."""
        ...

    def read_after(self, offset: int, limit: int) -> list[StoredEvent]: ...

    def head(self) -> int:
        """The offset of the newest event (0 when empty)."""
        ...


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


MIGRATIONS = [
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        anonymous_id TEXT,
        user_id TEXT,
        event TEXT,
        timestamp INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        ip TEXT,
        user_agent TEXT,
        body BLOB NOT NULL
    );
    CREATE UNIQUE INDEX events_message_id ON events (source, message_id);
    CREATE TABLE rejected (
        id INTEGER PRIMARY KEY,
        source TEXT,
        received_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        body BLOB NOT NULL
    );
    """,
    # Erased persons' identifiers as keyed digests (engine/privacy/suppression.py); the
    # version moves on every change so the collector re-reads the list only then.
    """
    CREATE TABLE suppressed (
        digest BLOB PRIMARY KEY,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE suppression_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key BLOB NOT NULL,
        version INTEGER NOT NULL
    );
    """,
    # Duplicates are found by a 16-byte digest of (source, messageId) instead of the text: an
    # index entry a third the size, on the hottest write path there is (see dedup_key).
    """
    ALTER TABLE events ADD COLUMN dedup_key BLOB;
    UPDATE events SET dedup_key = bond_dedup_key(source, message_id);
    CREATE UNIQUE INDEX events_dedup_key ON events (dedup_key);
    DROP INDEX events_message_id;
    """,
    # The digests leave the index for a table that is written in key order (see dedup.py).
    """
    CREATE TABLE dedup (key BLOB PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO dedup SELECT dedup_key, received_at FROM events ORDER BY dedup_key;
    CREATE TABLE dedup_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        merged_seq INTEGER NOT NULL
    );
    INSERT INTO dedup_state SELECT 1, coalesce(max(seq), 0) FROM events;
    DROP INDEX events_dedup_key;
    """,
    # The digests leave the table for sorted runs, written whole (see dedup_runs.py). The
    # table's digests become one run of the top level: it is not merged again, and retention
    # drops it once its newest event is gone.
    f"""
    CREATE TABLE dedup_runs (
        run INTEGER PRIMARY KEY,
        level INTEGER NOT NULL,
        at INTEGER NOT NULL,
        complete INTEGER NOT NULL,
        target INTEGER,  -- the run a merge is moving this one's digests into
        merged INTEGER NOT NULL DEFAULT 0  -- as a merge's target, the parts it holds so far
    );
    CREATE TABLE dedup_chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run INTEGER NOT NULL,
        last BLOB NOT NULL,
        keys BLOB NOT NULL
    );
    CREATE UNIQUE INDEX dedup_chunks_run ON dedup_chunks (run, last);
    INSERT INTO dedup_runs (run, level, at, complete)
        SELECT 1, {TOP_LEVEL}, max(at), 1 FROM dedup HAVING count(*);
    INSERT INTO dedup_chunks (run, last, keys)
        SELECT 1, max(key), bond_sorted_keys(key) FROM (
            SELECT key, substr(key, 1, 1) AS part,
                (row_number() OVER (PARTITION BY substr(key, 1, 1) ORDER BY key) - 1) / {CHUNK_KEYS}
                    AS chunk
            FROM dedup
        ) GROUP BY part, chunk;
    DROP TABLE dedup;
    """,
    # The runs' filter as a closing process left it, so that the next need not read every run.
    """
    CREATE TABLE dedup_filter (
        part INTEGER PRIMARY KEY,  -- the filter's parts, the first made first
        upto INTEGER NOT NULL,  -- the last chunk whose digests it holds: every one before too
        count INTEGER NOT NULL,
        bits BLOB NOT NULL
    );
    """,
    # How far each part of the digests in memory was merged, so that a restart reads back only
    # the digests past it, rather than all since the last round of merges ended; and the
    # digests in memory as a closing process left them, so that the next reads them at once
    # rather than from the rows (see dedup.py).
    f"""
    CREATE TABLE dedup_parts (
        part INTEGER PRIMARY KEY,  -- the digests' first byte
        merged_seq INTEGER NOT NULL  -- the runs hold every digest of the part up to this offset
    );
    CREATE TABLE dedup_memory (
        head INTEGER NOT NULL,  -- it holds every digest past its part's offset up to here
        newest INTEGER NOT NULL,  -- the latest receipt time of an event whose digest it holds
        keys BLOB NOT NULL
    );
    INSERT INTO dedup_parts (part, merged_seq)
        WITH RECURSIVE n(part) AS (
            SELECT 0 UNION ALL SELECT part + 1 FROM n WHERE part < {PARTS - 1}
        )
        SELECT part, (SELECT merged_seq FROM dedup_state) FROM n;
    """,
    # The digests of deleted events that the runs do not hold yet: their rows were where a
    # process that died read them back from (see dedup.py).
    """
    CREATE TABLE dedup_deleted (
        seq INTEGER PRIMARY KEY,  -- the deleted event's
        dedup_key BLOB NOT NULL,
        received_at INTEGER NOT NULL
    );
    """,
]

_COLUMNS = (
    "source, message_id, type, anonymous_id, user_id, event, timestamp, received_at, ip, "
    "user_agent, body"
)
_INSERT_REJECTED = "INSERT INTO rejected (source, received_at, reason, body) VALUES (?,?,?,?)"
# Only for an event this append stored (after the offset it started at): dedup_key has no index,
# but the rows after that offset are this commit's few.
_INSERT_TIED_REJECTED = (
    "INSERT INTO rejected (source, received_at, reason, body) SELECT ?, ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM events WHERE seq > ? AND dedup_key = ?)"
)

# A group of events is inserted by one statement rather than one per row. The sqlite3 module
# lets go of the GIL around every statement step and must take it back after; while another
# thread is busy that wait lasts up to the interpreter's switch interval (when the writer was a
# thread beside the collector's event loop, a statement per row made a commit's length depend
# on its row count times that interval), and each step has a fixed cost besides. Statements
# are prepared for a few sizes, and a group is padded up to the next one with rows of NULLs
# that the WHERE drops before they are inserted (so they take no seq, as a dropped duplicate
# does).
# The digests held in memory and in the runs on disk are checked before. The statement inserts
# nothing unless the log's AUTOINCREMENT counter is still the last offset this process
# knows of (the last parameter): rows another connection appended are read first. (Checking
# the rows themselves would make SQLite copy the whole group into a temporary table first,
# since the statement would then read the table it writes.)
# sqlite3 binds an int, str or bytearray at once but looks for an adapter for anything else,
# None and bytes included, at ten times the cost: a tuple, a dict lookup and two failed
# attribute lookups per value, with the GIL held. So a missing text goes in as the integer 0
# and comes back as NULL by NULLIF (a text column never holds the integer 0), padding rows are
# zeros, and a body or a digest goes in as a bytearray (copying a body to one and binding it
# costs 160 ns against 520 ns for binding the bytes).
_ROW = "(?,?,?,?,?,?,?,?,?,?,?,?)"
_PADDING = (0,) * 12
_NULLABLE = (3, 4, 5, 8, 9)  # anonymous_id, user_id, event, ip, user_agent
_SELECT = ", ".join(
    f"NULLIF(column{i + 1}, 0)" if i in _NULLABLE else f"column{i + 1}" for i in range(12)
)
# One row bound and stored as the statements below store theirs, for the bench that times
# SQLite's share alone (bond/bench/storage_ceiling.py).
INSERT_ROW = (
    f"INSERT INTO events ({_COLUMNS}, dedup_key) VALUES ("
    + ", ".join("NULLIF(?, 0)" if i in _NULLABLE else "?" for i in range(12))
    + ")"
)
_INSERT_SIZES = tuple(2**n for n in range(10))
_INSERTS = {
    size: f"INSERT INTO events ({_COLUMNS}, dedup_key) "
    f"SELECT {_SELECT} FROM (VALUES {','.join([_ROW] * size)}) WHERE column12 != 0 "
    f"AND ({LAST_SEQ}) = ?"
    for size in _INSERT_SIZES
}
_DELETE_CHUNK = 10_000  # offsets bound in one DELETE, under SQLite's limit on parameters
# What an operator reads after SQLite's own words when an append fails (in /healthz, the logs
# and the 503's reason). A quota or a file-size limit is an I/O error to SQLite, not a full disk.
_HINTS = {
    sqlite3.SQLITE_FULL: " (free space on its disk: appends resume by themselves)",
    sqlite3.SQLITE_IOERR: " (is its disk full, over a quota or failing?)",
}
# Digests held in memory before parts of them are merged into the runs: about 100 bytes each,
# and about what a process reads back from the rows when it first appends.
DEDUP_MEMORY_KEYS = 200_000


def _hint(exc: sqlite3.Error) -> str:
    return _HINTS.get(getattr(exc, "sqlite_errorcode", 0) & 0xFF, "")


def _write_a_page(conn: sqlite3.Connection) -> None:
    """Commit a page to the WAL that changes nothing, in the caller's transaction.

    An append of nothing is the collector's health check. A transaction that writes nothing
    commits on a full disk too, and the check answered "ok" while every event was refused. A
    row set to its own value writes nothing either, so it is changed and changed back.
    """
    conn.execute("UPDATE dedup_state SET merged_seq = merged_seq + 1")
    conn.execute("UPDATE dedup_state SET merged_seq = merged_seq - 1")


def _delete_events(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> int:
    """Delete the events matching `where`, keeping the digests the runs do not hold yet (in the
    caller's transaction); returns how many were deleted."""
    deleted = conn.execute(
        f"DELETE FROM events WHERE {where} RETURNING seq, dedup_key, received_at", params
    ).fetchall()
    keep_deleted(conn, deleted)
    return len(deleted)


def _without(
    params: list[object], keys: list[bytes], drop: set[bytes]
) -> tuple[list[object], list[bytes]]:
    """The rows of `params` (12 values each, one per key) whose key is not in `drop`."""
    mine = [row for row, key in enumerate(keys) if key not in drop]
    return [value for row in mine for value in params[row * 12 : row * 12 + 12]], [
        keys[row] for row in mine
    ]


class SqliteEventLog:
    """The embedded event log. One writer at a time; any number of readers in other processes."""

    def __init__(
        self, path: Path, *, checkpoints: bool = True, dedup_memory: int = DEDUP_MEMORY_KEYS
    ) -> None:
        """`checkpoints=False`: no commit on this connection copies the WAL into the database;
        another connection's `checkpoint_passive` calls do (see collector.checkpointer).
        """
        self.path = path
        self._conn = connect(path)
        self._file = _file_identity(path)
        if not checkpoints:
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        # Migration 3 fills the key of the events already stored.
        self._conn.create_function("bond_dedup_key", 2, dedup_key, deterministic=True)
        # Migration 5 writes the digests of the `dedup` table as runs. (typeshed's protocol
        # for an aggregate takes ints only.)
        self._conn.create_aggregate("bond_sorted_keys", 1, cast("Any", SortedKeys))
        migrate(self._conn, MIGRATIONS, name="event log")
        self._dedup_memory = dedup_memory
        self._recent: RecentKeys | None = None  # read on the first append: readers never need it
        self._merges = Outage("dedup_merge")

    def append(self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> int:
        # SQLite goes on committing into a file deleted under it (its data directory removed,
        # or the file replaced), and each commit would be acknowledged and then lost.
        if _file_identity(self.path) != self._file:
            raise StorageError(
                f"the event log {self.path.name} was deleted or replaced while in use; "
                "nothing more is written to it: restart to open it again"
            )
        largest = _INSERT_SIZES[-1]
        try:
            recent = self._recent or self._load_recent()
            head, added = recent.head, list[bytes]()
            try:
                if len(events) <= largest and not rejected and events:
                    # One statement is its own transaction: the whole commit is one step.
                    inserted = self._insert(events, recent, added)
                else:
                    with write_transaction(self._conn):
                        inserted = sum(
                            self._insert(events[start : start + largest], recent, added)
                            for start in range(0, len(events), largest)
                        )
                        if rejected:
                            self._insert_rejected(rejected, head)
                        elif not events:
                            _write_a_page(self._conn)
            except BaseException:
                recent.forget(added, head)
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"the event log cannot be written: {exc}{_hint(exc)}") from exc
        # The rows are committed whatever becomes of the merge: a failed one must not fail the
        # append (its requests would be answered 503 and sent again). Its transaction left
        # memory as it was, holding the digests, and the next append merges again.
        try:
            recent.merge_if_due(len(added))
        except sqlite3.Error as exc:
            self._merges.failed(f"{exc}{_hint(exc)}")
        else:
            self._merges.ended()
        return inserted

    def prepare_appends(self) -> None:
        """Read back what appending needs, which the first append does otherwise: for the log's
        one writer, before it says it is ready. Its work is bounded by the memory's limit."""
        if self._recent is None:
            try:
                self._load_recent()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read the event log's digests: {exc}") from exc

    def _load_recent(self) -> RecentKeys:
        self._recent = RecentKeys.load(self._conn, self.path, limit=self._dedup_memory)
        return self._recent

    def _insert_rejected(self, rejected: Sequence[RejectedEvent], head: int) -> None:
        self._conn.executemany(
            _INSERT_REJECTED, [row[:4] for row in rejected if row.message_id is None]
        )
        # Two copies can land in one commit (a beacon and the next page's request): one row.
        tied = {
            dedup_key(row.source or "", row.message_id): row
            for row in reversed(rejected)
            if row.message_id is not None
        }
        self._conn.executemany(
            _INSERT_TIED_REJECTED, [(*row[:4], head, key) for key, row in tied.items()]
        )

    def _insert(self, events: Sequence[NewEvent], recent: RecentKeys, added: list[bytes]) -> int:
        """Insert up to the largest statement's rows; returns how many were new.

        The digests of the rows sent are added to `recent` and to `added`, for an undo.
        """
        params: list[object] = []
        keys: list[bytes] = []
        extend, add = params.extend, params.append
        for event in events:
            key = dedup_key(event.source, event.message_id)
            if recent.add(key):
                keys.append(key)
                extend(event)
                add(bytearray(key))
        added += keys
        if not keys:
            return 0
        for column in _NULLABLE:
            # A whole column at a time: most columns hold no None, or nothing but None.
            values = params[column::12]
            if None in values:
                params[column::12] = [0 if value is None else value for value in values]
        bodies = cast("list[bytes]", params[10::12])
        params[10::12] = list(map(bytearray, bodies))  # a copy costs less (see above)
        recent.newest = max(recent.newest, max(event.received_at for event in events))
        held = recent.runs.held(keys)
        if held:  # sent again long after the first time: the runs have them
            params, keys = _without(params, keys, held)
        while keys:
            size = next(size for size in _INSERT_SIZES if size >= len(keys))
            cursor = self._conn.execute(
                _INSERTS[size],
                [*params, *_PADDING * (size - len(keys)), recent.head],
            )
            if cursor.rowcount:
                recent.head = cursor.lastrowid or 0
                return cursor.rowcount
            # Nothing new: every event was a duplicate, or another connection appended.
            theirs = recent.catch_up()
            if theirs is None:
                return 0
            params, keys = _without(params, keys, theirs)
        return 0

    def read_after(self, offset: int, limit: int) -> list[StoredEvent]:
        rows = self._conn.execute(
            f"SELECT seq, {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (offset, limit),
        ).fetchall()
        return [StoredEvent(*row) for row in rows]

    def head(self) -> int:
        row = self._conn.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def version(self) -> int:
        """The log's version as this connection sees it; pass it to `wait_for_append`."""
        return data_version(self._conn)

    def wait_for_append(self, timeout_s: float, *, since: int | None = None) -> bool:
        """Block until another connection commits after `since` (or the timeout).

        Read `since` with `version()` before reading the log: a commit landing between that
        read and this wait then ends the wait at once instead of being missed.
        """
        return wait_for_commit(self._conn, self.version() if since is None else since, timeout_s)

    def rejected_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM rejected").fetchone()[0])

    def rejected(self, limit: int = 100) -> list[RejectedEvent]:
        rows = self._conn.execute(
            "SELECT source, received_at, reason, body FROM rejected ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [RejectedEvent(*row) for row in rows]

    # -- privacy: suppression, erasure, retention (engine/privacy) ----------------------------

    def suppression_key(self) -> bytes:
        """The key of the suppression digests, created on first use."""
        self._conn.execute(
            "INSERT OR IGNORE INTO suppression_state (id, key, version) VALUES (1, ?, 0)",
            (os.urandom(32),),
        )
        return bytes(self._conn.execute("SELECT key FROM suppression_state").fetchone()[0])

    def suppression_version(self) -> int:
        row = self._conn.execute("SELECT version FROM suppression_state").fetchone()
        return int(row[0]) if row else 0

    def suppressed(self) -> frozenset[bytes]:
        return frozenset(bytes(r[0]) for r in self._conn.execute("SELECT digest FROM suppressed"))

    def suppress(self, digests: Iterable[bytes]) -> int:
        """Add digests to the suppression list; returns how many were new."""
        now = int(time.time() * 1000)
        return self._change_suppression(
            "INSERT OR IGNORE INTO suppressed (digest, at) VALUES (?, ?)",
            [(d, now) for d in digests],
        )

    def unsuppress(self, digests: Iterable[bytes]) -> int:
        return self._change_suppression(
            "DELETE FROM suppressed WHERE digest = ?", [(d,) for d in digests]
        )

    def _change_suppression(self, sql: str, rows: list[tuple[object, ...]]) -> int:
        self.suppression_key()
        with self._transaction("suppression list") as conn:
            changed = conn.executemany(sql, rows).rowcount
            conn.execute("UPDATE suppression_state SET version = version + 1")
        return max(changed, 0)

    def matching(self, match: LogMatch) -> list[StoredEvent]:
        where, params = match.where()
        rows = self._conn.execute(
            f"SELECT seq, {_COLUMNS} FROM events WHERE {where} ORDER BY seq", params
        ).fetchall()
        return [StoredEvent(*row) for row in rows]

    def erase(self, match: LogMatch, rejected_needles: Sequence[str]) -> tuple[int, int]:
        """Delete a person's events, and rejected rows whose body holds a needle.

        secure_delete zeroes the freed cells and pages, so the bytes go, not only the rows.
        Returns (events, rejected) deleted.
        """
        where, params = match.where()
        found = " OR ".join(["instr(lower(CAST(body AS TEXT)), ?) > 0"] * len(rejected_needles))
        with self._transaction("erase from the event log") as conn:
            events = _delete_events(conn, where, params)
            rejected = conn.execute(
                f"DELETE FROM rejected WHERE {found or '0'}", list(rejected_needles)
            ).rowcount
        return events, rejected

    def delete_seqs(self, seqs: Sequence[int]) -> int:
        with self._transaction("delete suppressed events") as conn:
            deleted = 0
            for start in range(0, len(seqs), _DELETE_CHUNK):
                chunk = list(seqs[start : start + _DELETE_CHUNK])
                deleted += _delete_events(conn, f"seq IN ({','.join('?' * len(chunk))})", chunk)
            return deleted

    def delete_older(self, received_before: int, up_to_seq: int, limit: int) -> tuple[int, int]:
        """Delete up to `limit` events received before a time and at or below an offset, and
        rejected rows received before it; returns (events, rejected)."""
        with self._transaction("apply retention") as conn:
            events = _delete_events(
                conn,
                "seq IN (SELECT seq FROM events WHERE seq <= ? AND received_at < ? "
                "ORDER BY seq LIMIT ?)",
                [up_to_seq, received_before, limit],
            )
            rejected = conn.execute(
                "DELETE FROM rejected WHERE id IN (SELECT id FROM rejected WHERE received_at < ? "
                "ORDER BY id LIMIT ?)",
                (received_before, limit),
            ).rowcount
        return events, rejected

    def checkpoint_passive(self) -> tuple[int, int]:
        """Copy committed pages from the WAL into the database, blocking no writer.

        Returns the frames in the WAL and how many of them the database now holds.
        """
        try:
            _, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot checkpoint the event log: {exc}") from exc
        return int(frames), int(copied)

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it; False while a reader holds it."""
        busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("PRAGMA secure_delete = ON")
            with write_transaction(self._conn):
                yield self._conn
        except sqlite3.Error as exc:
            raise StorageError(f"cannot {what}: {exc}") from exc

    def close(self) -> None:
        if self._recent is not None:
            self._recent.close()
        self._conn.close()
