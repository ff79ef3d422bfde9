"""The event log: an append-only sequence of accepted events, read by offset.

The collector appends; the engine reads after the offset it has durably applied. The interface is
two calls wide so a scale-out log (Kafka, Redis Streams, PostgreSQL) can stand in for SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from bond.errors import StorageError
from bond.storage.sqlite import connect, data_version, migrate, wait_for_commit


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
    """An event refused by validation, kept with its reason so nothing vanishes silently."""

    source: str | None
    received_at: int
    reason: str
    body: bytes


class EventLog(Protocol):
    def append(self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> int:
        """Commit a batch; returns how many events were new (the rest were duplicates)."""
        ...

    def read_after(self, offset: int, limit: int) -> list[StoredEvent]: ...

    def head(self) -> int:
        """The offset of the newest event (0 when empty)."""
        ...


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
]

_COLUMNS = (
    "source, message_id, type, anonymous_id, user_id, event, timestamp, received_at, ip, "
    "user_agent, body"
)
_INSERT = f"INSERT OR IGNORE INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_REJECTED = "INSERT INTO rejected (source, received_at, reason, body) VALUES (?,?,?,?)"


class SqliteEventLog:
    """The embedded event log. One writer at a time; any number of readers in other processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        migrate(self._conn, MIGRATIONS, name="event log")

    def append(self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> int:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                conn.executemany(_INSERT, events)
                inserted = conn.total_changes - before
                if rejected:
                    conn.executemany(_INSERT_REJECTED, rejected)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"cannot append to the event log: {exc}") from exc
        return inserted

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

    def probe(self) -> None:
        """Prove the log can take a write transaction right now (for health checks)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StorageError(f"the event log cannot be written: {exc}") from exc

    def close(self) -> None:
        self._conn.close()
