"""Whether the worker has created a table yet: the read API may open state.db before it."""

from __future__ import annotations

import sqlite3


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
