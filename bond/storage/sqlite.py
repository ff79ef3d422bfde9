"""Opening SQLite the way Bond needs it, and migrating schemas by version.

Each component that owns tables in a database (the event log, the identity graph, alerts, ...)
records its own version in `schema_version`, so components migrate independently. A migration is
a script, or a function for what SQL alone cannot do (sealing rows with keys); the ones due are
applied in one transaction with the version bump, so a crash mid-way leaves the old schema.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bond.errors import StorageError
from bond.logs import log

# A script, or a function that changes the database on the connection it is given (it must not
# commit: it runs inside the migration's transaction).
Migration = str | Callable[[sqlite3.Connection], None]

BUSY_TIMEOUT_MS = 5000
# Migrating a large log can take minutes; a process that opens it meanwhile waits that long.
MIGRATION_WAIT_S = 600.0


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


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


@contextmanager
def write_transaction(
    conn: sqlite3.Connection, *, begin: Callable[[sqlite3.Connection], None] = _begin
) -> Iterator[None]:
    """A transaction that holds the write lock from its start, on an autocommit connection;
    `begin` takes the lock (a migration waits longer for it)."""
    begin(conn)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, unless SQLite already has.

    After a full disk or an I/O error SQLite rolls the transaction back by itself, and a
    ROLLBACK then fails with "no transaction is active", an error that would replace the one
    that tells the operator what happened.
    """
    if conn.in_transaction:
        conn.execute("ROLLBACK")


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


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], *, name: str) -> int:
    """Apply `name`'s migrations past its recorded version; returns the version now in force.

    Every process that opens a database migrates it, and they start together after an upgrade:
    the version is read again once the write lock is held, so a migration that another process
    finished meanwhile is not applied twice, and a long one is waited for instead of failing.
    """
    try:
        # Read first: while another process migrates, even CREATE TABLE IF NOT EXISTS waits.
        if _current(conn, migrations, name) == len(migrations):
            return len(migrations)
        with write_transaction(conn, begin=lambda locking: _lock_for_migration(locking, name)):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            current = _current(conn, migrations, name)
            # An upgrade can take minutes on a large log, and the process answers nothing
            # meanwhile; a new database is made in milliseconds.
            upgrade = 0 < current < len(migrations)
            if upgrade:
                log("migrating", database=name, version=current, to=len(migrations))
            started = time.monotonic()
            for version in range(current + 1, len(migrations) + 1):
                migration = migrations[version - 1]
                if isinstance(migration, str):
                    for statement in _statements(migration):
                        conn.execute(statement)
                else:
                    migration(conn)
                conn.execute(
                    "INSERT OR REPLACE INTO schema_version (component, version) VALUES (?, ?)",
                    (name, version),
                )
        if upgrade:
            seconds = round(time.monotonic() - started, 3)
            log("migrated", database=name, version=len(migrations), seconds=seconds)
        return len(migrations)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate the {name} database: {exc}") from exc


def schema_version(conn: sqlite3.Connection, name: str) -> int:
    """The version of `name`'s tables recorded in the database; 0 when it has none."""
    row = None
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone():
        row = conn.execute(
            "SELECT version FROM schema_version WHERE component = ?", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


def _current(conn: sqlite3.Connection, migrations: Sequence[Migration], name: str) -> int:
    current = schema_version(conn, name)
    if current > len(migrations):
        raise StorageError(
            f"{name} database is at schema version {current}, newer than this Bond "
            f"({len(migrations)}); upgrade Bond before opening it"
        )
    return current


def _lock_for_migration(conn: sqlite3.Connection, name: str) -> None:
    """BEGIN IMMEDIATE, waiting up to MIGRATION_WAIT_S for a lock held by another process."""
    deadline = time.monotonic() + MIGRATION_WAIT_S
    waiting = False
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        if not waiting:
            waiting = True
            log(
                "migration_waiting",
                database=name,
                reason="another process holds the write lock, most likely migrating it",
            )


def _statements(script: str) -> list[str]:
    # executescript() would commit our transaction; split on the terminators instead.
    return [s.strip() for s in script.split(";") if s.strip()]


def refused_for_room(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is the disk taking no more: out of space
    or over a quota or a file-size limit. SQLite names all but the first an I/O error, and so
    the one a full disk gives as it makes a database's shared-memory file."""
    error: BaseException | None = exc
    while error is not None:
        if isinstance(error, OSError) and error.errno in _NO_ROOM:
            return True
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
            return True
        error = error.__cause__
    return False


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
