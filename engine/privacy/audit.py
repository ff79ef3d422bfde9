"""The privacy audit trail: each erasure, unsuppression and retention run, as counts.

An entry says what kinds of data were removed and how many rows of each, when, and who asked;
never whom it was about (not even a hash of the email, which could be tested against guesses).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import orjson


def record(
    conn: sqlite3.Connection,
    action: str,
    *,
    requested_by: str,
    counts: dict[str, int],
    request_id: int | None = None,
    requested_at: int | None = None,
) -> int:
    """Add an entry in the caller's transaction; returns its id."""
    cursor = conn.execute(
        "INSERT INTO privacy_audit (action, request_id, requested_by, requested_at, done_at, "
        "counts) VALUES (?, ?, ?, ?, ?, ?)",
        (
            action,
            request_id,
            requested_by,
            requested_at,
            int(time.time() * 1000),
            orjson.dumps(counts),
        ),
    )
    return int(cursor.lastrowid or 0)


def entries(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, action, request_id, requested_by, requested_at, done_at, counts "
        "FROM privacy_audit ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    names = ("id", "action", "request_id", "requested_by", "requested_at", "done_at")
    return [{**dict(zip(names, r[:6], strict=True)), "counts": orjson.loads(r[6])} for r in rows]
