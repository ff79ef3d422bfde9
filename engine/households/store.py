"""The household tables in `state.db`, migrated under the component name "households".

Everything the model needs to continue after a restart lives here: each account's model (its
sufficient statistics, drift detector and pending refit), the browsers' open sessions, the
finished sessions (the refit window), and what users read: members, attributions, drift events.

The worker keeps accounts and open sessions in memory between batches; `households_meta` holds a
generation that every batch advances in its transaction and every other writer (an erasure)
advances too, so a copy in memory is used only while the generation is the one it wrote.
Members' profiles are derived from the model when read; `households_members` lists the members
(with their profile as of the refit that last changed who they are) so that they can be counted
without the model.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson

from bond.storage.sqlite import migrate
from engine.households.account import account_model
from engine.households.profiles import profiles

COMPONENT = "households"

MIGRATIONS = [
    """
    CREATE TABLE IF NOT EXISTS households_models (
        person_id INTEGER PRIMARY KEY,
        state BLOB NOT NULL,
        sessions_seen INTEGER NOT NULL,
        members INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS households_members (
        person_id INTEGER NOT NULL,
        member_id INTEGER NOT NULL,
        profile BLOB NOT NULL,
        PRIMARY KEY (person_id, member_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS households_open (
        device TEXT PRIMARY KEY,
        last_ms INTEGER NOT NULL,
        state BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS households_open_last ON households_open (last_ms);
    CREATE TABLE IF NOT EXISTS households_sessions (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL,
        device TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        features BLOB NOT NULL,
        member_id INTEGER NOT NULL,
        confidence REAL NOT NULL,
        surprise REAL
    );
    CREATE INDEX IF NOT EXISTS households_sessions_person ON households_sessions (person_id, id);
    CREATE TABLE IF NOT EXISTS households_attributions (
        seq INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL,
        order_id TEXT,
        timestamp INTEGER NOT NULL,
        device TEXT NOT NULL,
        member_id INTEGER NOT NULL,
        probability REAL NOT NULL,
        probabilities BLOB NOT NULL,
        logits BLOB NOT NULL,
        sessions_seen INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS households_attributions_person
        ON households_attributions (person_id, timestamp);
    CREATE TABLE IF NOT EXISTS households_drift (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        sessions_seen INTEGER NOT NULL,
        sessions_since_change INTEGER NOT NULL,
        p_value REAL NOT NULL,
        members_before INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS households_drift_person ON households_drift (person_id, id);
    """,
    """
    CREATE TABLE IF NOT EXISTS households_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    ALTER TABLE households_drift ADD COLUMN kind TEXT NOT NULL DEFAULT 'change';
    ALTER TABLE households_drift ADD COLUMN member_id INTEGER;
    """,
]


def migrate_households(conn: sqlite3.Connection) -> int:
    return migrate(conn, MIGRATIONS, name=COMPONENT)


class Attribution(NamedTuple):
    seq: int
    person_id: int
    order_id: str | None
    timestamp: int
    device: str
    member_id: int
    probability: float
    probabilities: dict[int, float]
    logits: list[float]
    sessions_seen: int


class SessionRow(NamedTuple):
    person_id: int
    device: str
    start_ms: int
    features: dict[str, Any]
    member_id: int
    confidence: float
    surprise: float | None
    id: int = 0  # assigned by the database


class DriftEvent(NamedTuple):
    person_id: int
    at_ms: int
    sessions_seen: int
    sessions_since_change: int
    p_value: float
    members_before: int
    kind: str  # "join" or "leave"
    member_id: int | None  # the member who joined or left


def generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT generation FROM households_meta WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def set_generation(conn: sqlite3.Connection, value: int) -> None:
    conn.execute("INSERT OR REPLACE INTO households_meta (id, generation) VALUES (1, ?)", (value,))


def load_state(conn: sqlite3.Connection, person_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT state FROM households_models WHERE person_id = ?", (person_id,)
    ).fetchone()
    return orjson.loads(row[0]) if row else None


def save_state(
    conn: sqlite3.Connection,
    person_id: int,
    state: dict[str, Any],
    *,
    sessions_seen: int,
    members: int,
    at: int,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO households_models VALUES (?, ?, ?, ?, ?)",
        (person_id, orjson.dumps(state), sessions_seen, members, at),
    )


def save_members(
    conn: sqlite3.Connection, person_id: int, profiles: Sequence[dict[str, Any]]
) -> None:
    conn.execute("DELETE FROM households_members WHERE person_id = ?", (person_id,))
    conn.executemany(
        "INSERT INTO households_members VALUES (?, ?, ?)",
        [(person_id, p["member"], orjson.dumps(p)) for p in profiles],
    )


def all_open(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [orjson.loads(r[0]) for r in conn.execute("SELECT state FROM households_open")]


def save_open(conn: sqlite3.Connection, sessions: Iterable[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO households_open VALUES (?, ?, ?)",
        [(s["device"], s["last_ms"], orjson.dumps(s)) for s in sessions],
    )


def drop_open(conn: sqlite3.Connection, devices: Iterable[str]) -> None:
    conn.executemany("DELETE FROM households_open WHERE device = ?", [(d,) for d in devices])


def add_session(conn: sqlite3.Connection, row: SessionRow) -> int:
    """Store a finished session; returns its id."""
    cursor = conn.execute(
        "INSERT INTO households_sessions "
        "(person_id, device, start_ms, features, member_id, confidence, surprise) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*row[:3], orjson.dumps(row.features), *row[4:7]),
    )
    return int(cursor.lastrowid or 0)


_SESSION_COLUMNS = "person_id, device, start_ms, features, member_id, confidence, surprise, id"


def recent_sessions(conn: sqlite3.Connection, person_id: int, limit: int) -> list[SessionRow]:
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM households_sessions WHERE person_id = ? "
        "ORDER BY id DESC LIMIT ?",
        (person_id, limit),
    ).fetchall()
    return [_session_row(r) for r in reversed(rows)]


def all_sessions(conn: sqlite3.Connection) -> list[SessionRow]:
    rows = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM households_sessions ORDER BY id")
    return [_session_row(r) for r in rows]


def _session_row(r: tuple[Any, ...]) -> SessionRow:
    return SessionRow(r[0], r[1], r[2], orjson.loads(r[3]), *r[4:])


def relabel(conn: sqlite3.Connection, labels: Iterable[tuple[int, float, int]]) -> None:
    """Give sessions the member (and confidence) a refit now assigns them: (member, conf, id)."""
    conn.executemany(
        "UPDATE households_sessions SET member_id = ?, confidence = ? WHERE id = ?", labels
    )


def add_attribution(conn: sqlite3.Connection, a: Attribution) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO households_attributions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *a[:7],
            orjson.dumps({str(k): v for k, v in a.probabilities.items()}),
            orjson.dumps(a.logits),
            a.sessions_seen,
        ),
    )


def attributions(conn: sqlite3.Connection, person_id: int | None = None) -> list[Attribution]:
    where, args = ("WHERE person_id = ?", (person_id,)) if person_id is not None else ("", ())
    rows = conn.execute(
        f"SELECT * FROM households_attributions {where} ORDER BY timestamp, seq", args
    ).fetchall()
    return [
        Attribution(
            seq=r[0],
            person_id=r[1],
            order_id=r[2],
            timestamp=r[3],
            device=r[4],
            member_id=r[5],
            probability=r[6],
            probabilities={int(k): v for k, v in orjson.loads(r[7]).items()},
            logits=orjson.loads(r[8]),
            sessions_seen=r[9],
        )
        for r in rows
    ]


def add_drift(conn: sqlite3.Connection, event: DriftEvent) -> None:
    conn.execute(
        "INSERT INTO households_drift (person_id, at_ms, sessions_seen, sessions_since_change, "
        "p_value, members_before, kind, member_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        event,
    )


def drift_events(conn: sqlite3.Connection, person_id: int | None = None) -> list[DriftEvent]:
    where, args = ("WHERE person_id = ?", (person_id,)) if person_id is not None else ("", ())
    rows = conn.execute(
        "SELECT person_id, at_ms, sessions_seen, sessions_since_change, p_value, members_before, "
        f"kind, member_id FROM households_drift {where} ORDER BY id",
        args,
    ).fetchall()
    return [DriftEvent(*r) for r in rows]


def person_households(conn: sqlite3.Connection, person_id: int) -> dict[str, Any]:
    """What the read API shows for a person: members, their profiles, attributions, drift."""
    state = load_state(conn, person_id)
    members = (
        sorted(profiles(account_model(state)), key=lambda p: int(p["member"]))
        if state is not None
        else []
    )
    return {
        "person_id": person_id,
        "members": members,
        "attributions": [
            {
                "order_id": a.order_id,
                "timestamp": a.timestamp,
                "member": a.member_id,
                "probability": round(a.probability, 3),
                # Rounded for people, but never to 0: every member remains possible.
                "probabilities": {
                    str(k): max(round(v, 3), 0.001) for k, v in a.probabilities.items()
                },
                # What calibration leaves to someone the model does not have (a one-member
                # model early on): with the members', it makes 1.
                "not_told_apart": round(max(0.0, 1.0 - sum(a.probabilities.values())), 3),
            }
            for a in attributions(conn, person_id)
        ],
        "drift": [e._asdict() for e in drift_events(conn, person_id)],
    }


ACCOUNT_TABLES = (
    "households_models",
    "households_members",
    "households_sessions",
    "households_attributions",
    "households_drift",
)


def erase_persons(conn: sqlite3.Connection, person_ids: Sequence[int]) -> dict[str, int]:
    """Delete everything held about these accounts (an erasure); returns rows per table."""
    ids = sorted(set(person_ids))
    marks = ",".join("?" * len(ids))
    counts = {
        table: conn.execute(f"DELETE FROM {table} WHERE person_id IN ({marks})", ids).rowcount
        for table in ACCOUNT_TABLES
    }
    # Open sessions are keyed by device; the person is inside the saved state.
    erased = set(ids)
    devices = [
        device
        for device, state in conn.execute("SELECT device, state FROM households_open")
        if orjson.loads(state).get("person_id") in erased
    ]
    drop_open(conn, devices)
    counts["households_open"] = len(devices)
    set_generation(conn, generation(conn) + 1)  # the worker's copy in memory is stale now
    return counts
