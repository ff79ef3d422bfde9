"""The erasure queue in state.db: the CLI and the read API enqueue, the worker carries out.

The worker is the only writer of the identity state and caches it in memory, so it runs each
erasure itself, between batches. A request moves through recorded steps (see erase.py); a
crash leaves it at its last committed step and the next worker resumes from there.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Literal, NamedTuple

import orjson

# "anonymous_id" is queued by the worker only (see Worker._unsuppressed).
Kind = Literal["email", "user_id", "any", "anonymous_id"]
KINDS: tuple[Kind, ...] = ("email", "user_id", "any", "anonymous_id")


class Request(NamedTuple):
    id: int
    kind: Kind
    value: str | None
    requested_by: str
    requested_at: int
    state: str
    step: str
    plan: bytes | None


def enqueue(conn: sqlite3.Connection, kind: Kind, value: str, requested_by: str) -> int:
    cursor = conn.execute(
        "INSERT INTO erasure_requests (kind, value, requested_by, requested_at) VALUES (?,?,?,?)",
        (kind, value, requested_by, int(time.time() * 1000)),
    )
    return int(cursor.lastrowid or 0)


def unfinished(conn: sqlite3.Connection) -> list[Request]:
    rows = conn.execute(
        "SELECT id, kind, value, requested_by, requested_at, state, step, plan "
        "FROM erasure_requests WHERE state != 'done' ORDER BY id"
    ).fetchall()
    return [Request(*row) for row in rows]


def advance(conn: sqlite3.Connection, request_id: int, step: str, plan: bytes | None) -> None:
    conn.execute(
        "UPDATE erasure_requests SET state = 'running', step = ?, plan = coalesce(?, plan) "
        "WHERE id = ?",
        (step, plan, request_id),
    )


def settle(conn: sqlite3.Connection, request_id: int, step: str, result: dict[str, Any]) -> None:
    """Record the outcome and forget the identifiers: the request keeps nothing personal."""
    conn.execute(
        "UPDATE erasure_requests SET step = ?, value = NULL, plan = NULL, result = ?, "
        "finished_at = ? WHERE id = ?",
        (step, orjson.dumps(result), int(time.time() * 1000), request_id),
    )


def close(conn: sqlite3.Connection, request_id: int, step: str) -> None:
    conn.execute(
        "UPDATE erasure_requests SET state = 'done', step = ? WHERE id = ?", (step, request_id)
    )


def public(conn: sqlite3.Connection, request_id: int) -> dict[str, Any] | None:
    """The request as the CLI and the read API show it: progress and counts, no identifier."""
    row = conn.execute(
        "SELECT id, kind, requested_by, requested_at, state, step, result, finished_at "
        "FROM erasure_requests WHERE id = ?",
        (request_id,),
    ).fetchone()
    if row is None:
        return None
    names = ("id", "kind", "requested_by", "requested_at", "state", "step")
    return {
        **dict(zip(names, row[:6], strict=True)),
        "result": orjson.loads(row[6]) if row[6] else None,
        "finished_at": row[7],
    }
