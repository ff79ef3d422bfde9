"""The people list of the read API (`GET /api/people`) on a state built by the real worker:
identified people, most recently active first, paged by cursor; and on a state from before it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest

from bond.storage.sqlite import migrate
from conftest import ADMIN_TOKEN, WRITE_KEY
from engine.api import create_read_app
from engine.privacy.legacy import seal_legacy
from engine.schema import COMPONENT, MIGRATIONS, ORDERS_INDEX
from engine.timeline import IdentityReader
from engine.worker import Worker
from tests.engine.harness import Engine
from tests.engine.test_api import AppClient, get, refused


def read_app(engine: Engine) -> AppClient:
    engine.config = replace(
        engine.config,
        admin_token=ADMIN_TOKEN,
        sources=(replace(engine.config.sources[0], write_key=WRITE_KEY),),
    )
    return AppClient(create_read_app(engine.config))


@pytest.fixture
def client(engine: Engine) -> Iterator[AppClient]:
    """Ada (two emails, a phone that was anonymous, then joined her) is the most recently
    active; Bob's identify was signed by the site's server; Cy and Dee tie; a visitor who
    never identified is nobody's business here."""
    engine.track("phone", 1_000)
    engine.identify("laptop", 1_100, user="u-ada", email="Ada@Example.com")
    engine.identify("laptop", 1_200, user="u-ada", email="ada.work@example.com")
    engine.identify("phone", 5_000, user="u-ada")
    signed = {"bond": {"verified": "user_id"}}  # the collector's word that it checked
    engine.send("identify", anon="desk", user="u-bob", ts=4_000, context=signed)
    engine.identify("kiosk-1", 3_000, email="cy@example.com")
    engine.identify("kiosk-2", 3_000, email="dee@example.com")
    engine.track("tablet", 6_000)
    engine.run()
    yield read_app(engine)


def names(client: AppClient, **params: Any) -> list[str]:
    """Each listed person's label, walking every page."""
    found: list[str] = []
    while True:
        page = get(client, "/people", **params)
        found += [person["label"]["name"] for person in page["people"]]
        if page["next"] is None:
            return found
        params["before"] = page["next"]


def test_identified_people_most_recently_active_first(client: AppClient) -> None:
    everyone = ["ada@example.com", "u-bob", "dee@example.com", "cy@example.com"]
    assert names(client) == everyone
    # However the pages fall, they follow each other with no gap and no repeat.
    for limit in (1, 2, 3, 4, 500):
        assert names(client, limit=limit) == everyone
    assert get(client, "/people", limit=4)["next"] is None  # no cursor to an empty page

    ada, bob = get(client, "/people", limit=2)["people"]
    merged_phone = get(client, "/persons", anonymous_id="phone")
    assert ada == {
        "id": merged_phone["id"],
        "identified": True,
        "label": {"id": merged_phone["id"], "name": "ada@example.com", "identified": True},
        "user_ids": ["u-ada"],
        "emails": ["ada@example.com", "ada.work@example.com"],
        "first_seen": 1_000,
        "last_seen": 5_000,
        "active_at": 5_000,
        "event_count": 4,
        "verified": False,
    }
    assert (bob["user_ids"], bob["emails"], bob["verified"]) == (["u-bob"], [], True)


@pytest.mark.parametrize(
    "before",
    ["x", "1", "1:", ":1", "1:x", "1:-2", "--1:1", "1:+2", f"1:{2**63}", f"{2**63}:1", "1:2:3"],
)
def test_a_cursor_not_from_a_previous_page_is_a_bad_request(client: AppClient, before: str) -> None:
    status, error, reason = refused(client, "/people", before=before)
    assert (status, error) == (400, "bad_request")
    assert reason == "before must be the 'next' of a previous page of people"


@pytest.mark.parametrize("limit", ["0", "501", "x", ""])
def test_a_limit_outside_1_to_500_is_refused(client: AppClient, limit: str) -> None:
    status, _error, reason = refused(client, "/people", limit=limit)
    assert status == 400 and "1 to 500" in reason


def test_a_cursor_below_zero_pages_on_to_people_never_seen(client: AppClient) -> None:
    # Someone identified without a single event (none here) comes last, below zero: a cursor
    # at them is read, not refused.
    assert get(client, "/people", before="-4611686018427387904:99") == {"people": [], "next": None}


def test_only_the_admin_token_lists_people(client: AppClient) -> None:
    nobody = client.get("/api/people")
    write_key = client.get("/api/people", headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert (nobody.status_code, write_key.status_code) == (401, 403)
    assert "write key" in write_key.json()["reason"]
    assert "ada" not in nobody.text + write_key.text


def test_a_state_from_before_the_people_list_lists_its_people(engine: Engine) -> None:
    engine.identify("laptop", 1_000, user="ada")
    engine.track("laptop", 3_000)
    engine.identify("desk", 2_000, user="bob")
    engine.track("kiosk", 2_500)
    engine.run()
    engine.worker.close()
    # As the code before version 5 left it: the same tables and indexes as then, and the rows
    # (version 6's change marks for the identity map and version 8's orders index go first).
    with closing(sqlite3.connect(engine.config.state_db)) as conn, conn:
        for table in ("map_changes", "map_removed", "map_sync"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX persons_map_changed")
        conn.execute("ALTER TABLE persons DROP COLUMN map_seq")
        conn.execute("DROP INDEX persons_active")
        conn.execute(f"DROP INDEX {ORDERS_INDEX}")  # version 8
        conn.execute("ALTER TABLE persons DROP COLUMN active_at")
        conn.execute("UPDATE schema_version SET version = ? WHERE component = ?", (4, COMPONENT))
        with closing(sqlite3.connect(":memory:")) as before:
            migrate(before, MIGRATIONS[:4], name=COMPONENT)
            seal_legacy(before)
            assert schema(conn, tables(before)) == schema(before, tables(before))

    # The read API opens it first, as it may after an upgrade; then the worker goes on.
    client = read_app(engine)
    assert names(client, limit=1) == ["ada", "bob"]
    engine.worker = Worker(engine.config)
    engine.reader = IdentityReader(engine.worker.conn)
    engine.track("desk", 4_000)
    engine.identify("tablet", 3_500, user="cy")
    engine.run()
    assert names(client, limit=1) == ["bob", "cy", "ada"]


def tables(conn: sqlite3.Connection) -> list[str]:
    found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [name for (name,) in found if name != "schema_version"]


def schema(conn: sqlite3.Connection, names: list[str]) -> list[Any]:
    """Each table's columns and indexes."""
    return [
        (
            name,
            conn.execute(f"PRAGMA table_info({name})").fetchall(),
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "ORDER BY name",
                (name,),
            ).fetchall(),
        )
        for name in names
    ]
