"""A state.db written before encryption (identity schema 1) is sealed when a worker opens it:
the same person, traits and timeline read back, and the plaintext is gone from the files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from bond.config import Config
from bond.storage.eventlog import NewEvent, SqliteEventLog
from bond.storage.sqlite import connect, migrate
from engine.schema import COMPONENT, MIGRATIONS
from engine.store import MAX_TS, MIN_TS
from engine.timeline import IdentityReader
from engine.worker import Worker

SECRETS = ("legacy@example.com", "Lenny Legacybottom", "OLD-SKU-SECRET", "legacy-user-1")


def write_version_1_state(path: Path) -> None:
    """What the worker wrote before encryption: plaintext identifiers, traits and data."""
    conn = connect(path, durable=False)
    migrate(conn, MIGRATIONS[:1], name=COMPONENT)
    traits = {"email": ["legacy@example.com", 200], "name": ["Lenny Legacybottom", 200]}
    conn.executescript(
        "INSERT INTO engine_offset VALUES (1, 0);"
        "INSERT INTO browsers VALUES (1, 'a:old-laptop');"
        f"INSERT INTO segments VALUES (1, 1, {MIN_TS}, {MAX_TS}, 1);"
    )
    conn.execute("INSERT INTO persons VALUES (1, NULL, 1, 100, 200, 2, ?)", (orjson.dumps(traits),))
    conn.executemany(
        "INSERT INTO identifiers VALUES (?, ?, 1, 200)",
        [("email", "legacy@example.com"), ("user_id", "legacy-user-1")],
    )
    conn.executemany(
        "INSERT INTO timeline VALUES (1, ?, ?, ?, ?, ?)",
        [
            (100, 1, "track", "Viewed", b'{"sku":"OLD-SKU-SECRET"}'),
            (
                200,
                2,
                "identify",
                None,
                b'{"email":"legacy@example.com","name":"Lenny Legacybottom"}',
            ),
        ],
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_a_version_1_state_is_sealed_in_place_and_reads_the_same(data_dir: Path) -> None:
    write_version_1_state(data_dir / "state.db")
    raw = (data_dir / "state.db").read_bytes()
    assert all(s.encode() in raw for s in SECRETS)  # the test's premise: plaintext at rest
    SqliteEventLog(data_dir / "events.db").close()

    worker = Worker(Config(data_dir=data_dir))
    reader = IdentityReader(worker.conn)
    person_id = reader.find(email="Legacy@Example.com")
    assert person_id == 1 and reader.find(user_id="legacy-user-1") == 1
    profile = reader.profile(1)
    assert profile is not None
    assert profile["traits"] == {"email": "legacy@example.com", "name": "Lenny Legacybottom"}
    assert profile["user_ids"] == ["legacy-user-1"]
    events = reader.timeline(1, 10).events
    assert [e.get("properties") or e.get("traits") for e in events] == [
        {"email": "legacy@example.com", "name": "Lenny Legacybottom"},
        {"sku": "OLD-SKU-SECRET"},
    ]
    files = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("state.db"))
    assert [s for s in SECRETS if s.encode() in files] == []
    with sqlite3.connect(data_dir / "state.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "identifiers" not in tables

    # The worker goes on from the migrated state: the same user on a new browser is the same
    # person, found through the blind index.
    log = SqliteEventLog(data_dir / "events.db")
    body = orjson.dumps({"type": "identify", "userId": "legacy-user-1", "anonymousId": "new"})
    log.append(
        [
            NewEvent(
                "default", "m", "identify", "new", "legacy-user-1", None, 300, 300, None, None, body
            )
        ],
        [],
    )
    worker.run_once()
    assert reader.find(anonymous_id="new") == 1
    log.close()
    worker.close()


def test_opening_a_migrated_state_again_changes_nothing(data_dir: Path) -> None:
    write_version_1_state(data_dir / "state.db")
    Worker(Config(data_dir=data_dir)).close()
    before = (data_dir / "state.db").read_bytes()
    Worker(Config(data_dir=data_dir)).close()
    assert (data_dir / "state.db").read_bytes() == before
