"""The alert outbox: alerts written in the transaction that caused them, delivered from here.

The engine worker enqueues inside its batch transaction on `state.db`, so an alert exists exactly
when the state change that caused it was committed: a crash before the commit loses both, a crash
after keeps both. The sender then delivers each row and marks it; a row is `pending` until Discord
accepted it (`sent`) or it can never be delivered (`failed`, with the reason).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Literal, NamedTuple

import orjson

from bond.errors import StorageError
from bond.storage.sqlite import Migration, migrate, schema_version
from engine.privacy import crypto
from engine.privacy.keys import KeyRing
from engine.schema import migrate_identity

COMPONENT = "alerts"

State = Literal["pending", "sent", "failed"]


def _seal_plaintext(conn: sqlite3.Connection) -> None:
    """Seal the alerts written before encryption (a text summary, a JSON payload) with the key
    of the person they name, as engine.privacy.legacy seals the rest of such a state.

    secure_delete zeroes the plaintext's old cells as the rows are rewritten. A person the
    identity tables no longer hold gets a key, as KeyRing.sealer gives a legacy person one:
    nothing stays in plaintext.
    """
    conn.execute("PRAGMA secure_delete = ON")
    keys = KeyRing(conn)
    rows = conn.execute(
        "SELECT id, person_id, summary, payload FROM alert_outbox WHERE typeof(summary) = 'text'"
    ).fetchall()
    conn.executemany(
        "UPDATE alert_outbox SET summary = ?, payload = ? WHERE id = ?",
        [
            (
                keys.seal(person_id, summary.encode(), crypto.ALERT_SUMMARY),
                keys.seal(person_id, bytes(payload), crypto.ALERT_PAYLOAD),
                alert_id,
            )
            for alert_id, person_id, summary, payload in rows
        ],
    )
    keys.flush()


MIGRATIONS: list[Migration] = [
    """
    CREATE TABLE alert_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL,
        kind TEXT NOT NULL,
        person_id INTEGER NOT NULL,
        summary TEXT NOT NULL,
        payload BLOB NOT NULL,
        -- when the event that caused the alert reached the collector: alert latency starts here
        caused_at INTEGER,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        sent_at INTEGER,
        discord_message_id TEXT
    );
    CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at, id) WHERE state = 'pending';
    CREATE TABLE alert_cooldowns (
        rule TEXT NOT NULL,
        person_id INTEGER NOT NULL,
        fired_at INTEGER NOT NULL,
        PRIMARY KEY (rule, person_id)
    ) WITHOUT ROWID;
    """,
    # Alerts written before encryption at rest (Bond of 2026-11-22) name their person in
    # plaintext: they are sealed now.
    _seal_plaintext,
    # Whether the worker that started last delivers alerts at all (see sender.py): without a
    # webhook they stay pending for good, and the dashboard says why.
    """
    CREATE TABLE alert_delivery (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        webhook INTEGER NOT NULL
    );
    """,
]
# The version from which alerts are sealed in the outbox.
_SEALED = 2


class Alert(NamedTuple):
    id: int
    rule: str
    kind: str
    person_id: int
    summary: str
    payload: dict[str, Any]
    caused_at: int | None
    created_at: int
    state: State
    attempts: int
    next_attempt_at: int
    last_error: str | None
    sent_at: int | None
    discord_message_id: str | None

    def public(self) -> dict[str, Any]:
        """The alert as the read API lists it: delivery state, no payload internals."""
        return {
            "id": self.id,
            "rule": self.rule,
            "kind": self.kind,
            "person_id": self.person_id,
            "summary": self.summary,
            "created_at": self.created_at,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "sent_at": self.sent_at,
        }


_COLUMNS = (
    "id, rule, kind, person_id, summary, payload, caused_at, created_at, state, attempts, "
    "next_attempt_at, last_error, sent_at, discord_message_id"
)


def now_ms() -> int:
    return int(time.time() * 1000)


def migrate_outbox(conn: sqlite3.Connection) -> None:
    # Alerts are sealed with the keys of the persons they name, kept by the identity tables.
    migrate_identity(conn)
    before = schema_version(conn, COMPONENT)
    migrate(conn, MIGRATIONS, name=COMPONENT)
    if 0 < before < _SEALED:
        # The WAL may still hold pages with the plaintext: copied into the database (whose
        # pages they overwrite) and truncated, as after engine.privacy.legacy's sealing.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def enqueue(
    conn: sqlite3.Connection,
    *,
    rule: str,
    kind: str,
    person_id: int,
    summary: str,
    payload: dict[str, Any],
    caused_at: int | None = None,
) -> int:
    """Add an alert in the caller's transaction (this never commits); returns its id.

    The summary and payload name the person, so they are sealed with the person's key like
    the rest of what state.db holds about them (engine/privacy/keys.py).
    """
    created = now_ms()
    keys = KeyRing(conn)
    sealed_summary = keys.seal(person_id, summary.encode(), crypto.ALERT_SUMMARY)
    sealed_payload = keys.seal(person_id, orjson.dumps(payload), crypto.ALERT_PAYLOAD)
    keys.flush()
    cursor = conn.execute(
        "INSERT INTO alert_outbox (rule, kind, person_id, summary, payload, caused_at, "
        "created_at, next_attempt_at) VALUES (?,?,?,?,?,?,?,?)",
        (rule, kind, person_id, sealed_summary, sealed_payload, caused_at, created, created),
    )
    return int(cursor.lastrowid or 0)


def next_due(conn: sqlite3.Connection, now: int) -> Alert | None:
    """The oldest pending alert whose time has come: the one the sender delivers next."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM alert_outbox WHERE state = 'pending' AND next_attempt_at <= ? "
        "ORDER BY next_attempt_at, id LIMIT 1",
        (now,),
    ).fetchone()
    return _alert(KeyRing(conn), row) if row else None


def next_wake(conn: sqlite3.Connection) -> int | None:
    """When the earliest pending alert becomes due (epoch ms), or None when nothing is pending."""
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM alert_outbox WHERE state = 'pending'"
    ).fetchone()
    return None if row[0] is None else int(row[0])


def mark_sent(conn: sqlite3.Connection, alert_id: int, *, message_id: str | None) -> None:
    _update(
        conn,
        "UPDATE alert_outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
        "last_error = NULL, discord_message_id = ? WHERE id = ?",
        (now_ms(), message_id, alert_id),
    )


def mark_failed(conn: sqlite3.Connection, alert_id: int, *, error: str) -> None:
    _update(
        conn,
        "UPDATE alert_outbox SET state = 'failed', attempts = attempts + 1, last_error = ? "
        "WHERE id = ?",
        (error, alert_id),
    )


def retry_later(conn: sqlite3.Connection, alert_id: int, *, at: int, error: str) -> None:
    _update(
        conn,
        "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
        "WHERE id = ?",
        (at, error, alert_id),
    )


def retry_failed(conn: sqlite3.Connection) -> int:
    """Make failed alerts pending again (after fixing the webhook); returns how many."""
    cursor = conn.execute(
        "UPDATE alert_outbox SET state = 'pending', attempts = 0, next_attempt_at = ? "
        "WHERE state = 'failed'",
        (now_ms(),),
    )
    return cursor.rowcount


def recent(conn: sqlite3.Connection, limit: int = 50, before: int | None = None) -> list[Alert]:
    """The newest alerts first (older than the alert id `before`, when given), whatever their
    state (for the read API and the CLI)."""
    # Readers open state.db read-only and may come before the worker has created the outbox.
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_outbox'"
    ).fetchone()
    if exists is None:
        return []
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert_outbox WHERE id < ? ORDER BY id DESC LIMIT ?",
        (2**63 - 1 if before is None else before, limit),
    ).fetchall()
    keys = KeyRing(conn)
    return [_alert(keys, row) for row in rows]


def for_persons(conn: sqlite3.Connection, person_ids: list[int]) -> list[Alert]:
    """Every alert about these persons, oldest first (an export of what is held about them)."""
    marks = ",".join("?" * len(person_ids))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert_outbox WHERE person_id IN ({marks}) ORDER BY id",
        person_ids,
    ).fetchall()
    keys = KeyRing(conn)
    return [_alert(keys, row) for row in rows]


def erase_persons(conn: sqlite3.Connection, person_ids: list[int]) -> int:
    """Delete every alert about these persons, sent or not, and their cooldowns (an erasure).

    A sent alert's payload names the person too, so it goes as well as the pending ones.
    Returns how many alerts were deleted.
    """
    marks = ",".join("?" * len(person_ids))
    conn.execute(f"DELETE FROM alert_cooldowns WHERE person_id IN ({marks})", person_ids)
    cursor = conn.execute(f"DELETE FROM alert_outbox WHERE person_id IN ({marks})", person_ids)
    return cursor.rowcount


def _alert(keys: KeyRing, row: tuple[Any, ...]) -> Alert:
    values = list(row)
    values[4] = _opened(keys, values[4], crypto.ALERT_SUMMARY).decode()
    values[5] = orjson.loads(_opened(keys, values[5], crypto.ALERT_PAYLOAD))
    return Alert(*values)


def _opened(keys: KeyRing, value: str | bytes, purpose: bytes) -> bytes:
    # Alerts written before encryption at rest are plaintext until migration 2 seals them, and
    # the read API may open the state before any process that migrates it.
    if isinstance(value, str):
        return value.encode()
    return (keys.open(value, purpose) or b"{}") if crypto.is_sealed(value) else value


def _update(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    # Autocommit: each mark is its own small transaction, so a crash right after it keeps it.
    try:
        conn.execute(sql, params)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot update the alert outbox: {exc}") from exc
