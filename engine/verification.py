"""Which persons hold an identifier their site's server vouched for with a signature.

The collector checks signatures (collector/signing.py) and writes `context.bond.verified` (the
kind of identifier vouched for) into the events it verified, after removing whatever a client
sent there; so the marker in a stored body is the collector's word. A person is verified from
the first event that gives them a vouched-for identifier. The graph only ever folds anonymous
persons into others, so a verified person is always the one that survives a merge and keeps
the flag, whoever joins them later. Identities from sources without signing stay unverified.

The state is one small table keyed by person id (never by identifier values), migrated under
its own component name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, NamedTuple

from bond.ids import normalize_email
from bond.storage.eventlog import StoredEvent
from bond.storage.sqlite import migrate
from engine.store import IdentityStore

COMPONENT = "verification"

MIGRATIONS = [
    """
    CREATE TABLE IF NOT EXISTS verified_persons (
        person_id INTEGER PRIMARY KEY,
        verified_at INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    """,
]


class Proof(NamedTuple):
    """A vouched-for identifier, and the event (time and offset) that carried it."""

    kind: str  # "user_id" or "email", as in the identifiers table
    value: str
    at: int
    seq: int


def migrate_verification(conn: sqlite3.Connection) -> int:
    return migrate(conn, MIGRATIONS, name=COMPONENT)


def proof(event: StoredEvent, body: dict[str, Any]) -> Proof | None:
    """The identifier the collector verified in this stored event, if any."""
    context = body.get("context")
    marker = context.get("bond") if isinstance(context, dict) else None
    vouched = marker.get("verified") if isinstance(marker, dict) else None
    if vouched == "user_id" and event.user_id is not None:
        return Proof("user_id", event.user_id, event.timestamp, event.seq)
    if vouched == "email":
        traits = body.get("traits")
        email = normalize_email(traits.get("email")) if isinstance(traits, dict) else None
        if email is not None:
            return Proof("email", email, event.timestamp, event.seq)
    return None


def record(conn: sqlite3.Connection, store: IdentityStore, proofs: Iterable[Proof]) -> None:
    """Mark the holders of this batch's vouched-for identifiers verified.

    Runs in the worker's batch transaction after the graph is flushed, so an identifier the
    graph refused to attach (a user id limit) verifies nobody.
    """
    # A signed-in visitor's every event carries the proof: one row per identifier is enough.
    first: dict[tuple[str, str], Proof] = {}
    for found in proofs:
        first.setdefault((found.kind, found.value), found)
    rows = []
    for found in first.values():
        holder = store.person_of(found.kind, found.value)
        if holder is not None:
            rows.append((holder, found.at, found.seq))
    if rows:
        conn.executemany(
            "INSERT OR IGNORE INTO verified_persons (person_id, verified_at, seq) VALUES (?, ?, ?)",
            rows,
        )


def is_verified(conn: sqlite3.Connection, person_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM verified_persons WHERE person_id = ?", (person_id,)
    ).fetchone()
    return row is not None
