"""Incremental identity-map pulls (`changed_since`): after a full pull and a chain of
incremental ones, each from the previous pull's `sync`, the consumer's table is a fresh full
pull's, whatever happened meanwhile (stitches, splits, merges, user ids added, erasures)."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from conftest import ReadApi
from engine.schema import MIGRATIONS, migrate_identity
from tests.engine.harness import Engine
from tests.engine.privacy.privacy_support import T0, Stack, iso, post, stack
from tests.engine.test_identity_map import run_cli

Stream = tuple[str | None, str | None]


def message(n: int, type_: str, anon: str | None, user: str | None = None, **fields: Any) -> Any:
    body = {"type": type_, "messageId": f"s-{n}", "timestamp": iso(T0 + 1000 * n), **fields}
    if anon is not None:
        body["anonymousId"] = anon
    if user is not None:
        body["userId"] = user
    return body


def stream(row: dict[str, Any]) -> Stream:
    """The event stream a row is of: a browser, or a user id's server-side events."""
    anon = row["anonymous_id"]
    return (anon, None) if anon is not None else (None, row["user_id"])


def pull(api: ReadApi, changed_since: str | None = None) -> dict[str, Any]:
    """Every page of one pull, two rows a page; `sync` is the first page's (the oldest)."""
    rows: list[dict[str, Any]] = []
    removed: list[int] = []
    sync: str | None = None
    cursor: str | None = None
    while True:
        params = {"limit": "2"}
        if changed_since is not None:
            params["changed_since"] = changed_since
        if cursor is not None:
            params["after"] = cursor
        response = api.get("/identity-map", **params)
        assert response.status_code == 200, response.text
        page = response.json()
        sync = sync or page["sync"]
        rows += page["rows"]
        removed += page.get("removed_persons", [])
        cursor = page["next"]
        if cursor is None:
            return {"rows": rows, "removed": removed, "sync": sync}


def as_table(rows: list[dict[str, Any]]) -> dict[Stream, list[dict[str, Any]]]:
    table: dict[Stream, list[dict[str, Any]]] = {}
    for row in rows:
        table.setdefault(stream(row), []).append(row)
    return table


def apply(table: dict[Stream, list[dict[str, Any]]], pulled: dict[str, Any]) -> None:
    """What a consumer does: delete every stream with a row of an erased person, then replace
    each stream sent (whole)."""
    erased = set(pulled["removed"])
    for key in [key for key, rows in table.items() if erased & {r["person_id"] for r in rows}]:
        del table[key]
    table.update(as_table(pulled["rows"]))


def synced(state: Stack, table: dict[Stream, list[dict[str, Any]]], sync: str) -> dict[str, Any]:
    """Pull what changed since `sync` into `table` and check it against a fresh full pull."""
    state.caught_up()
    pulled = pull(state.api, sync)
    apply(table, pulled)
    fresh = pull(state.api)
    assert fresh["sync"] == pulled["sync"]  # nothing ran in between: one state
    assert table == as_table(fresh["rows"])
    return pulled


def test_a_chain_of_incremental_pulls_equals_a_fresh_full_pull(tmp_path: Path) -> None:
    with stack(tmp_path / "data") as state:
        post(
            state.collector,
            [
                message(1, "page", "laptop"),
                message(2, "identify", "laptop", traits={"email": "cy@example.com"}),
                message(3, "track", "kiosk", event="Viewed"),
                message(4, "identify", "kiosk", "ada"),
                message(5, "page", "lurker"),
                message(6, "page", "couch"),
            ],
        )
        state.caught_up()
        full = pull(state.api)
        table = as_table(full["rows"])
        assert set(table) == {("laptop", None), ("kiosk", None), ("lurker", None), ("couch", None)}

        # Nothing happened: nothing to send.
        nothing = synced(state, table, full["sync"])
        assert nothing["rows"] == [] and nothing["removed"] == []

        # A known person's new browser (no identity event), a stitch, a new anonymous browser.
        post(
            state.collector,
            [
                message(10, "identify", "phone", traits={"email": "cy@example.com"}),
                message(11, "track", "tablet", event="Viewed"),
                message(12, "identify", "tablet", "dan"),
                message(13, "page", "newcomer"),
                message(14, "page", "lurker"),  # an event that changes no row
            ],
        )
        first = synced(state, table, full["sync"])
        assert {stream(row) for row in first["rows"]} == {
            ("phone", None),
            ("tablet", None),
            ("newcomer", None),
        }

        # A user id for a person who had only an email: both of cy's browsers change, with no
        # segment written. A shared browser split by a second login. A server-side stream.
        post(
            state.collector,
            [
                message(20, "identify", "laptop", "cy", traits={"email": "cy@example.com"}),
                message(21, "identify", "kiosk", "bob"),
                message(22, "track", "kiosk", event="Cart Viewed"),
                message(23, "track", None, "bob", event="Refund Issued"),
            ],
        )
        second = synced(state, table, first["sync"])
        assert {stream(row) for row in second["rows"]} == {
            ("laptop", None),
            ("phone", None),
            ("kiosk", None),
            (None, "bob"),
        }
        assert {row["user_id"] for row in table[("phone", None)]} == {"cy"}
        assert len(table[("kiosk", None)]) == 2

        # A merge through an alias from the site's server: the couch's anonymous person
        # becomes ada.
        post(
            state.collector,
            [message(30, "alias", None, "ada", previousId="couch"), message(31, "page", "den")],
        )
        third = synced(state, table, second["sync"])
        assert ("couch", None) in {stream(row) for row in third["rows"]}
        ada = table[("kiosk", None)][0]["person_id"]
        assert [row["person_id"] for row in table[("couch", None)]] == [ada]

        # An erasure: bob's own stream goes, the kiosk he shared stays with its other ranges;
        # the den, whose anonymous person was folded into bob since the last pull, goes too.
        bob = table[(None, "bob")][0]["person_id"]
        den = table[("den", None)][0]["person_id"]
        post(state.collector, [message(40, "identify", "den", "bob")])
        state.erase(user_id="bob")
        fourth = synced(state, table, third["sync"])
        assert sorted(fourth["removed"]) == sorted([bob, den])
        assert (None, "bob") not in table and ("den", None) not in table
        assert ("kiosk", None) in {stream(row) for row in fourth["rows"]}
        assert "bob" not in {row["user_id"] for rows in table.values() for row in rows}

        # A token from before a later change is still answered, with everything since.
        again = pull(state.api, full["sync"])
        replayed = as_table(full["rows"])
        apply(replayed, again)
        assert replayed == table


def test_a_token_that_is_malformed_or_from_the_future_is_refused(tmp_path: Path) -> None:
    with stack(tmp_path / "data") as state:
        post(state.collector, [message(1, "page", "laptop")])
        state.caught_up()
        sync = pull(state.api)["sync"]
        for bad in ("abc", "-1", "1.5", ""):
            response = state.api.get("/identity-map", changed_since=bad)
            assert response.status_code == 400, (bad, response.text)
            assert "changed_since must be the 'sync' of a previous" in response.text
        ahead = state.api.get("/identity-map", changed_since=str(int(sync) + 1))
        assert ahead.status_code == 400, ahead.text
        assert "ahead of this Bond's worker offset" in ahead.text
        assert "do a full pull" in ahead.text


def downgrade_to_version_5(state_db: Path) -> None:
    """What a state built before version 6 looks like: no marks, nothing recorded since."""
    with sqlite3.connect(state_db) as conn:
        conn.executescript(
            """
            DROP TABLE map_changes;
            DROP TABLE map_removed;
            DROP TABLE map_sync;
            DROP INDEX persons_map_changed;
            ALTER TABLE persons DROP COLUMN map_seq;
            UPDATE schema_version SET version = 5 WHERE component = 'identity';
            """
        )


def test_after_an_upgrade_older_tokens_get_a_full_pull_and_newer_ones_miss_nothing(
    data_dir: Path,
) -> None:
    engine = Engine(data_dir)
    try:
        engine.track("laptop", 100)
        engine.identify("laptop", 200, email="cy@example.com")
        engine.run()
        before = engine.worker.offset
        engine.identify("phone", 300, email="cy@example.com")
        engine.run()
        upgraded_at = engine.worker.offset
    finally:
        engine.close()
    downgrade_to_version_5(data_dir / "state.db")
    with sqlite3.connect(data_dir / "state.db") as conn:
        assert migrate_identity(conn) == len(MIGRATIONS)

    api = ReadApi(data_dir).start()
    try:
        # The phone's browser was made after `before`, and nothing recorded it.
        old = api.get("/identity-map", changed_since=str(before))
        assert old.status_code == 410, old.text
        assert f"older than offset {upgraded_at}" in old.text
        assert "do a full pull" in old.text

        full = pull(api)
        assert full["sync"] == str(upgraded_at)
        table = as_table(full["rows"])
        engine = Engine(data_dir)
        engine._ids = itertools.count(100)  # message ids the first engine did not use
        try:
            # A user id for cy, who had only an email: her browsers made before the upgrade.
            engine.identify("laptop", 400, user="cy", email="cy@example.com")
            engine.run()
        finally:
            engine.close()
        pulled = pull(api, full["sync"])
        assert {stream(row) for row in pulled["rows"]} == {("laptop", None), ("phone", None)}
        apply(table, pulled)
        assert table == as_table(pull(api)["rows"])
    finally:
        api.stop()


def test_the_cli_pulls_what_changed_since_a_token(engine: Engine, data_dir: Path) -> None:
    engine.track("laptop", 100)
    engine.track("kiosk", 100)
    engine.run()
    full = run_cli(data_dir)
    assert full.returncode == 0, full.stderr
    sync = orjson.loads(full.stderr.splitlines()[-1])["sync"]
    engine.identify("kiosk", 200, user="ada")
    engine.track("tablet", 300)
    engine.run()

    changed = run_cli(data_dir, "--changed-since", sync)
    assert changed.returncode == 0, changed.stderr
    rows = [orjson.loads(line) for line in changed.stdout.splitlines()]
    assert [(row["anonymous_id"], row["user_id"], row["removed"]) for row in rows] == [
        ("kiosk", "ada", False),
        ("tablet", None, False),
    ]
    assert orjson.loads(changed.stderr.splitlines()[-1])["sync"] == str(engine.worker.offset)

    bad = run_cli(data_dir, "--changed-since", "yesterday")
    assert bad.returncode == 1
    assert "changed_since must be the 'sync' of a previous" in bad.stderr
