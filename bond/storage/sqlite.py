"""Opening SQLite the way Bond needs it, and migrating schemas by version.

Each component that owns tables in a database (the event log, the identity graph, alerts, ...)
records its own version in `schema_version`, so components migrate independently. A migration is
a script applied in one transaction with the version bump: a crash mid-way leaves the old schema.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bond.errors import StorageError

BUSY_TIMEOUT_MS = 5000


def connect(path: Path, *, durable: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and a busy timeout.

    `durable` makes every commit reach the disk (synchronous=FULL): the collector only answers
    2xx after a commit, and that promise has to survive a power cut, not just a process crash.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A transaction that holds the write lock from its start, on an autocommit connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def data_version(conn: sqlite3.Connection) -> int:
    """A number that moves whenever another connection commits to this database.

    It costs microseconds, so polling it every couple of milliseconds follows another process's
    writes closely without real load.
    """
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def wait_for_commit(
    conn: sqlite3.Connection,
    since: int,
    timeout_s: float,
    *,
    poll_s: float = 0.002,
    pause: Callable[[float], bool] = _sleep,
) -> bool:
    """Block until another connection has committed since `data_version` was `since`.

    Returns True on a commit, False on timeout or when `pause` (which sleeps) returns True, as
    `threading.Event.wait` does once a stop is asked for. Taking `since` from the caller, read
    before its last look at the data, means a commit in between cannot be missed.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if data_version(conn) != since:
            return True
        if pause(poll_s):
            return False
    return data_version(conn) != since


def migrate(conn: sqlite3.Connection, migrations: Sequence[str], *, name: str) -> int:
    """Apply `name`'s migrations past its recorded version; returns the version now in force."""
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = conn.execute(
            "SELECT version FROM schema_version WHERE component = ?", (name,)
        ).fetchone()
        current = row[0] if row else 0
        if current > len(migrations):
            raise StorageError(
                f"{name} database is at schema version {current}, newer than this Bond "
                f"({len(migrations)}); upgrade Bond before opening it"
            )
        for version in range(current + 1, len(migrations) + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(migrations[version - 1]):
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO schema_version (component, version) VALUES (?, ?)",
                    (name, version),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(migrations)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate the {name} database: {exc}") from exc


def _statements(script: str) -> list[str]:
    # executescript() would commit our transaction; split on the terminators instead.
    return [s.strip() for s in script.split(";") if s.strip()]
