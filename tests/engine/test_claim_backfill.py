"""A state applied before identity version 3 has no `timeline.claim`; the worker backfills it
(engine/claims.py) so a late login on a shared browser splits as on a fresh install."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import orjson

from bond.storage.eventlog import NewEvent
from bond.storage.sqlite import schema_version
from engine import schema
from engine.claims import BATCH_ROWS
from tests.engine.harness import Engine

Feed = Callable[[Engine], None]


def _before(engine: Engine) -> None:
    engine.identify("kiosk", 100, user="u-ada")
    engine.track("kiosk", 300, event="Order Completed", user="u-ada")  # names Ada
    engine.track("kiosk", 400)
    engine.identify("kiosk", 500, email="ada@example.com")  # names Ada by her email


def _event(type_: str, anon: str, ts: int, message_id: str, **body: object) -> NewEvent:
    sent = {"type": type_, "messageId": message_id, "anonymousId": anon, **body}
    user = body.get("userId")
    return NewEvent(
        "default",
        message_id,
        type_,
        anon,
        user if isinstance(user, str) else None,
        None,
        ts,
        ts,
        None,
        None,
        orjson.dumps(sent),
    )


def _late_login(engine: Engine) -> None:
    """Bob's login, reaching the log after Ada's later events (its own message id: a restarted
    harness numbers its messages from 1 again)."""
    engine.log.append([_event("identify", "kiosk", 200, "late-login", userId="u-bob")], [])


def _timelines(engine: Engine) -> dict[str, list[int]]:
    return {
        user: sorted(e["seq"] for e in engine.timeline(user_id=user)) for user in ("u-ada", "u-bob")
    }


def _fresh(data_dir: Path, before: Feed) -> dict[str, list[int]]:
    engine = Engine(data_dir)
    try:
        before(engine)
        engine.run()
        _late_login(engine)
        engine.run()
        return _timelines(engine)
    finally:
        engine.close()


def _as_written_before_version_3(data_dir: Path) -> None:
    """What the last release before version 3 left, as this release's migrations see it: the
    same rows with no claim, and the identity schema at the version before the backfill."""
    with closing(sqlite3.connect(data_dir / "state.db")) as conn:
        conn.execute("UPDATE timeline SET claim = NULL")
        conn.execute("DROP TABLE claim_backfill")
        conn.execute(f"DROP INDEX {schema.ORDERS_INDEX}")  # version 8, after the backfill's 7
        conn.execute(
            "UPDATE schema_version SET version = ? WHERE component = ?", (6, schema.COMPONENT)
        )
        conn.commit()


def _upgraded(data_dir: Path, before: Feed, *, raw_gone: tuple[int, ...] = ()) -> Engine:
    engine = Engine(data_dir)
    before(engine)
    engine.run()
    engine.log.delete_seqs(raw_gone)
    engine.close()
    _as_written_before_version_3(data_dir)
    return Engine(data_dir)


def test_a_late_login_after_the_upgrade_splits_as_on_a_fresh_install(tmp_path: Path) -> None:
    fresh = _fresh(tmp_path / "fresh", _before)
    assert fresh == {"u-ada": [1, 2, 3, 4], "u-bob": [5]}  # the premise: Bob gets only his login

    engine = _upgraded(tmp_path / "upgraded", _before)
    try:
        assert engine.worker.claims.pending
        _late_login(engine)
        engine.run()
        assert _timelines(engine) == fresh
        assert not engine.worker.claims.pending
        assert schema_version(engine.worker.conn, schema.COMPONENT) == len(schema.MIGRATIONS)
    finally:
        engine.close()


def test_without_the_raw_event_an_identify_claims_from_its_row_and_a_user_id_does_not(
    tmp_path: Path,
) -> None:
    def before(engine: Engine) -> None:
        engine.identify("kiosk", 100, user="u-ada")
        engine.track("kiosk", 250, user="u-ada")  # seq 2: a user id the row does not keep
        engine.identify("kiosk", 300, email="ada@example.com")  # seq 3: traits the row keeps
        engine.track("kiosk", 400, user="u-ada")

    assert _fresh(tmp_path / "fresh", before) == {"u-ada": [1, 2, 3, 4], "u-bob": [5]}

    engine = _upgraded(tmp_path / "upgraded", before, raw_gone=(2, 3))
    try:
        _late_login(engine)
        engine.run()
        # Retention took both raw events: the identify's email is read from its timeline row,
        # the track's user id is nowhere, so the late login takes that track, as before.
        assert _timelines(engine) == {"u-ada": [1, 3, 4], "u-bob": [2, 5]}
    finally:
        engine.close()


def test_the_backfill_goes_in_bounded_steps_resumes_after_a_restart_and_then_costs_nothing(
    tmp_path: Path,
) -> None:
    def before(engine: Engine) -> None:
        engine.log.append(
            [_event("page", f"anon-{n}", 50, f"page-{n}") for n in range(2 * BATCH_ROWS + 10)], []
        )
        _before(engine)  # the kiosk is the newest browser: its rows come in the last step

    fresh = _fresh(tmp_path / "fresh", before)
    data_dir = tmp_path / "upgraded"
    engine = _upgraded(data_dir, before)
    try:
        _late_login(engine)
        offset = engine.worker.offset
        assert engine.worker.run_once() == BATCH_ROWS
        assert engine.worker.offset == offset  # no new event before the claims are complete
    finally:
        engine.close()  # stopped between two steps

    with closing(sqlite3.connect(data_dir / "state.db")) as conn:
        cursor = conn.execute("SELECT browser_id FROM claim_backfill").fetchone()
    assert cursor is not None and cursor[0] > 1

    engine = Engine(data_dir)
    try:
        assert engine.worker.claims.pending
        assert engine.worker.run_once() == BATCH_ROWS  # the second step, not the first again
        engine.run()
        assert _timelines(engine) == fresh
        assert engine.worker.conn.execute("SELECT count(*) FROM claim_backfill").fetchone() == (0,)
    finally:
        engine.close()

    again = Engine(data_dir)
    try:
        assert not again.worker.claims.pending
    finally:
        again.close()


def test_a_fresh_state_has_nothing_to_backfill(engine: Engine) -> None:
    assert not engine.worker.claims.pending
    _before(engine)
    engine.run()
    assert engine.worker.conn.execute("SELECT count(*) FROM claim_backfill").fetchone() == (0,)
