"""Which state.db tables hold rows about a person, beyond those erase.py names itself.

A component added later (signed-identity verification, say) that keys a table by `person_id`
is found here, so an erasure deletes its rows and an export shows them without being told.
"""

from __future__ import annotations

import sqlite3

from engine.households.store import ACCOUNT_TABLES

# Tables erase.py and export.py handle by name.
KNOWN = frozenset(
    {
        "persons",
        "identifier_index",
        "segments",
        "identity_events",
        "person_keys",
        "alert_outbox",
        "alert_cooldowns",
        *ACCOUNT_TABLES,
    }
)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def other_person_tables(conn: sqlite3.Connection) -> list[str]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return [
        t
        for t in tables
        if t not in KNOWN
        and any(col[1] == "person_id" for col in conn.execute(f"PRAGMA table_info({t})"))
    ]
