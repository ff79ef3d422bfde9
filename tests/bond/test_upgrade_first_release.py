"""Upgrading in place from the first release (2026-11-22): stop it, start this Bond on its data
directory. The old state is made with the SQL of the old migrations and rows as that release
wrote them: no encryption, households and alerts at their first schema."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson

from bond.config import Config
from bond.storage import eventlog
from bond.storage.eventlog import NewEvent, SqliteEventLog
from bond.storage.sqlite import connect, migrate, schema_version
from conftest import start_worker, wait_until
from engine import schema
from engine.alerts import outbox
from engine.households import store as households
from engine.store import MAX_TS, MIN_TS
from engine.timeline import IdentityReader
from engine.worker import open_state
from tests.engine.privacy.privacy_support import run_cli

EMAIL = "dave@example.com"
USER_ID = "u-dave"
BROWSER = "a-dave"
RECEIVED = 1_795_000_000_000
SENT_SUMMARY = f"Dave ({EMAIL}) identified"
PENDING_SUMMARY = f"Order Completed by Dave ({EMAIL})"
TRAITS = {"email": EMAIL, "name": "Dave"}


def _payload(title: str) -> bytes:
    return orjson.dumps({"embeds": [{"title": title}], "allowed_mentions": {"parse": []}})


def write_first_release(data_dir: Path) -> None:
    """A data directory as the 2026-11-22 release left it after a page view, an identify and an
    order from one browser: its event log, and a state.db with plaintext identifiers, traits,
    timeline data and alerts (one sent, one still pending), and a household model."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = connect(data_dir / "events.db")
    migrate(log, eventlog.MIGRATIONS[:1], name="event log")
    # (type, user id, event name, what the client sent besides, what the timeline keeps)
    events: list[tuple[str, str | None, str | None, dict[str, Any], dict[str, Any]]] = [
        ("page", None, "Home", {"name": "Home"}, {}),
        ("identify", USER_ID, None, {"traits": TRAITS}, TRAITS),
        ("track", USER_ID, "Order Completed", {"properties": {"total": 900}}, {"total": 900}),
    ]
    log.executemany(
        "INSERT INTO events (source, message_id, type, anonymous_id, user_id, event, timestamp, "
        "received_at, ip, user_agent, body) VALUES ('shop', ?, ?, ?, ?, ?, ?, ?, '127.0.0.0', "
        "'Mozilla/5.0', ?)",
        [
            (
                f"dave-{seq}",
                kind,
                BROWSER,
                user_id,
                name,
                RECEIVED + seq,
                RECEIVED + seq,
                orjson.dumps(
                    {
                        "type": kind,
                        "messageId": f"dave-{seq}",
                        "anonymousId": BROWSER,
                        **({"userId": user_id} if user_id else {}),
                        **sent,
                    }
                ),
            )
            for seq, (kind, user_id, name, sent, _) in enumerate(events, start=1)
        ],
    )
    log.close()

    state = connect(data_dir / "state.db", durable=False)
    migrate(state, schema.MIGRATIONS[:1], name=schema.COMPONENT)
    migrate(state, households.MIGRATIONS[:1], name=households.COMPONENT)
    migrate(state, outbox.MIGRATIONS[:1], name=outbox.COMPONENT)
    traits = {"email": [EMAIL, RECEIVED + 2], "name": ["Dave", RECEIVED + 2]}
    state.executescript(
        "INSERT INTO engine_offset VALUES (1, 3);"
        f"INSERT INTO browsers VALUES (1, 'a:{BROWSER}');"
        f"INSERT INTO segments VALUES (1, 1, {MIN_TS}, {MAX_TS}, 1);"
    )
    state.execute(
        "INSERT INTO persons VALUES (1, NULL, 1, ?, ?, 3, ?)",
        (RECEIVED + 1, RECEIVED + 3, orjson.dumps(traits)),
    )
    state.executemany(
        "INSERT INTO identifiers VALUES (?, ?, 1, ?)",
        [("user_id", USER_ID, RECEIVED + 2), ("email", EMAIL, RECEIVED + 2)],
    )
    state.executemany(
        "INSERT INTO timeline VALUES (1, ?, ?, ?, ?, ?)",
        [
            (RECEIVED + seq, seq, kind, name, orjson.dumps(kept))
            for seq, (kind, _, name, _, kept) in enumerate(events, start=1)
        ],
    )
    state.execute(
        "INSERT INTO households_models VALUES (1, ?, 1, 1, ?)",
        (orjson.dumps({"model": {"sessions_seen": 1}}), RECEIVED + 3),
    )
    state.execute(
        "INSERT INTO households_drift (person_id, at_ms, sessions_seen, sessions_since_change, "
        "p_value, members_before) VALUES (1, ?, 1, 1, 0.5, 1)",
        (RECEIVED + 3,),
    )
    state.executemany(
        "INSERT INTO alert_outbox (rule, kind, person_id, summary, payload, caused_at, "
        "created_at, state, attempts, next_attempt_at, sent_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, "
        "?, ?, ?)",
        [
            (
                "big checkout",
                "identified",
                SENT_SUMMARY,
                _payload(SENT_SUMMARY),
                RECEIVED + 2,
                RECEIVED + 2,
                "sent",
                1,
                RECEIVED + 2,
                RECEIVED + 2,
            ),
            (
                "large order",
                "event",
                PENDING_SUMMARY,
                _payload(PENDING_SUMMARY),
                RECEIVED + 3,
                RECEIVED + 3,
                "pending",
                3,
                RECEIVED + 60_000,
                None,
            ),
        ],
    )
    state.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.close()


def _state_files(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("state.db"))


def test_alerts_written_before_encryption_are_sealed_once_and_read_the_same(
    data_dir: Path,
) -> None:
    write_first_release(data_dir)
    assert EMAIL.encode() in (data_dir / "state.db").read_bytes()  # the premise: plaintext

    conn = open_state(Config(data_dir=data_dir))
    try:
        alerts = {a.summary: a for a in outbox.recent(conn)}
        sealed = conn.execute("SELECT id, summary, payload FROM alert_outbox").fetchall()
    finally:
        conn.close()

    assert _state_files(data_dir).count(EMAIL.encode()) == 0
    assert sorted(alerts) == sorted([SENT_SUMMARY, PENDING_SUMMARY])
    assert alerts[SENT_SUMMARY].state == "sent"
    assert (alerts[PENDING_SUMMARY].state, alerts[PENDING_SUMMARY].attempts) == ("pending", 3)
    assert alerts[PENDING_SUMMARY].payload == orjson.loads(_payload(PENDING_SUMMARY))

    # A second start finds nothing to do: the sealed rows stay as they are.
    again = open_state(Config(data_dir=data_dir))
    try:
        assert again.execute("SELECT id, summary, payload FROM alert_outbox").fetchall() == sealed
        assert schema_version(again, outbox.COMPONENT) == len(outbox.MIGRATIONS)
    finally:
        again.close()


def test_export_and_erase_are_the_first_commands_after_the_upgrade(data_dir: Path) -> None:
    """A request the DPO had waiting is carried out before any worker runs on the new code."""
    write_first_release(data_dir)

    exported = run_cli(data_dir, "export", EMAIL)
    assert exported.returncode == 0, exported.stderr
    document = orjson.loads(exported.stdout)
    assert document["person"]["emails"] == [EMAIL]
    assert [d["kind"] for d in document["household"]["drift"]] == ["change"]
    assert sorted(a["summary"] for a in document["alerts"]) == [SENT_SUMMARY, PENDING_SUMMARY]

    erased = run_cli(data_dir, "erase", EMAIL)
    assert erased.returncode == 0, erased.stderr
    result = orjson.loads(erased.stdout)
    assert result["state"] == "done"
    assert result["result"]["counts"]["alerts"] == 2
    assert result["result"]["counts"]["log_events"] == 3
    with closing(sqlite3.connect(data_dir / "state.db")) as conn:
        assert conn.execute("SELECT count(*) FROM households_models").fetchone() == (0,)


def _late_login(data_dir: Path) -> None:
    """Erin logs in on Dave's browser at the time of its page view, and her login reaches the log
    after Dave's identify and order: it takes the page view only, not what named Dave."""
    body = {"type": "identify", "messageId": "erin-1", "anonymousId": BROWSER, "userId": "u-erin"}
    log = SqliteEventLog(data_dir / "events.db")
    try:
        log.append(
            [
                NewEvent(
                    "shop",
                    "erin-1",
                    "identify",
                    BROWSER,
                    "u-erin",
                    None,
                    RECEIVED + 1,
                    RECEIVED + 10,
                    None,
                    None,
                    orjson.dumps(body),
                )
            ],
            [],
        )
    finally:
        log.close()


def _timelines_by_worker(data_dir: Path) -> dict[str, list[int]]:
    worker = start_worker(data_dir)
    try:
        with closing(sqlite3.connect(data_dir / "state.db")) as conn:
            wait_until(
                lambda: conn.execute("SELECT seq FROM engine_offset").fetchone() == (4,),
                what="the worker to apply the late login",
            )
    finally:
        worker.stop()
    conn = open_state(Config(data_dir=data_dir))
    try:
        reader = IdentityReader(conn)
        timelines = {}
        for user_id in (USER_ID, "u-erin"):
            person = reader.find(user_id=user_id)
            assert person is not None
            timelines[user_id] = sorted(e["seq"] for e in reader.timeline(person, 500).events)
        return timelines
    finally:
        conn.close()


def test_a_late_login_after_the_upgrade_leaves_the_first_release_s_claims_alone(
    tmp_path: Path,
) -> None:
    """The first release wrote no `timeline.claim`; the upgraded worker finds who each of its
    events named, so it splits the shared browser as a fresh install fed the same log does."""
    fresh = tmp_path / "fresh"
    write_first_release(fresh)
    for path in fresh.iterdir():
        if path.name.startswith("state.db"):
            path.unlink()
    _late_login(fresh)
    expected = _timelines_by_worker(fresh)
    assert expected == {USER_ID: [2, 3], "u-erin": [1, 4]}

    upgraded = tmp_path / "upgraded"
    write_first_release(upgraded)
    _late_login(upgraded)
    assert _timelines_by_worker(upgraded) == expected
