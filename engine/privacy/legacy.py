"""Moving a state written before encryption (identity schema version 1) to sealed storage.

Runs after the identity migrations, in one transaction: every person gets a key, identifiers
move to the blind index, traits and timeline data are sealed with their owner's key, and the
plaintext `identifiers` table is dropped. `secure_delete` zeroes the plaintext's old cells and
pages as they are freed, and the WAL is truncated after the commit, so the plaintext is gone
from the files, not only from the tables. On a fresh state it only creates the index secret.
"""

from __future__ import annotations

import sqlite3

from bond.storage.sqlite import write_transaction
from engine.privacy import crypto
from engine.privacy.keys import KeyRing, ensure_index_secret

_PLAINTEXT = "identifiers"


def seal_legacy(conn: sqlite3.Connection) -> bool:
    """Seal what version 1 left in plaintext; returns whether there was anything to do."""
    if not _exists(conn):
        return False
    conn.execute("PRAGMA secure_delete = ON")
    with write_transaction(conn):
        if _exists(conn):  # another process may have done it while this one waited
            ensure_index_secret(conn)
            ring = KeyRing(conn)
            _keys(conn, ring)
            _identifiers(conn, ring)
            _traits(conn, ring)
            _timeline(conn, ring)
            ring.flush()
            conn.execute(f"DROP TABLE {_PLAINTEXT}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return True


def _exists(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_PLAINTEXT,)
    ).fetchone()
    return row is not None


def _keys(conn: sqlite3.Connection, ring: KeyRing) -> None:
    for (person_id,) in conn.execute(
        "SELECT id FROM persons WHERE id NOT IN (SELECT person_id FROM person_keys)"
    ).fetchall():
        ring.create(person_id)


def _identifiers(conn: sqlite3.Connection, ring: KeyRing) -> None:
    rows = conn.execute(f"SELECT kind, value, person_id, added_at FROM {_PLAINTEXT}").fetchall()
    conn.executemany(
        "INSERT OR IGNORE INTO identifier_index (kind, digest, person_id, added_at, sealed) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (
                kind,
                ring.blind(kind, value),
                person_id,
                added_at,
                ring.seal(person_id, value.encode(), crypto.IDENTIFIER),
            )
            for kind, value, person_id, added_at in rows
        ],
    )


def _traits(conn: sqlite3.Connection, ring: KeyRing) -> None:
    rows = conn.execute("SELECT id, traits FROM persons").fetchall()
    conn.executemany(
        "UPDATE persons SET traits = ? WHERE id = ?",
        [
            (ring.seal(person_id, bytes(traits), crypto.TRAITS), person_id)
            for person_id, traits in rows
            if not crypto.is_sealed(bytes(traits))
        ],
    )


def _timeline(conn: sqlite3.Connection, ring: KeyRing) -> None:
    """Seal each event's data with the key of the person whose segment holds it now."""
    for browser_id, start, end, person_id in conn.execute(
        "SELECT browser_id, start_ts, end_ts, person_id FROM segments"
    ).fetchall():
        rows = conn.execute(
            "SELECT ts, seq, data FROM timeline WHERE browser_id = ? AND ts >= ? AND ts < ?",
            (browser_id, start, end),
        ).fetchall()
        conn.executemany(
            "UPDATE timeline SET data = ? WHERE browser_id = ? AND ts = ? AND seq = ?",
            [
                (ring.seal(person_id, bytes(data or b"{}"), crypto.TIMELINE), browser_id, ts, seq)
                for ts, seq, data in rows
                if data is None or not crypto.is_sealed(bytes(data))
            ],
        )
