"""The model lives in state.db: a worker restart continues exactly where it stopped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bond.simulate.households import Settings, generate
from bond.simulate.offline import _applied, batches
from bond.simulate.traffic import messages
from bond.storage.sqlite import connect
from engine.households import store
from engine.households.calibration import load
from engine.households.processor import HouseholdProcessor
from engine.households.store import migrate_households


def _feed(conn: sqlite3.Connection, batches: list[list]) -> None:  # type: ignore[type-arg]
    processor = HouseholdProcessor(load())
    for batch in batches:
        conn.execute("BEGIN")
        processor.process(conn, batch)
        conn.execute("COMMIT")


def test_a_restart_between_batches_changes_nothing(tmp_path: Path) -> None:
    households = generate(Settings(households=12, seed=21))
    person_of = {h.account: h.index + 1 for h in households}
    chunks = list(batches(_applied(messages(households), person_of), 300))
    half = len(chunks) // 2

    one = connect(tmp_path / "one.db", durable=False)
    migrate_households(one)
    _feed(one, chunks)

    first = connect(tmp_path / "two.db", durable=False)
    migrate_households(first)
    _feed(first, chunks[:half])
    first.close()
    second = connect(tmp_path / "two.db", durable=False)
    migrate_households(second)
    _feed(second, chunks[half:])

    assert store.attributions(second) == store.attributions(one)
    assert store.all_sessions(second) == store.all_sessions(one)
    models = "SELECT person_id, state FROM households_models ORDER BY person_id"
    assert second.execute(models).fetchall() == one.execute(models).fetchall()
    assert store.person_households(second, 1)["members"]


def test_a_rolled_back_batch_leaves_no_trace(tmp_path: Path) -> None:
    households = generate(Settings(households=4, seed=22))
    person_of = {h.account: h.index + 1 for h in households}
    chunks = list(batches(_applied(messages(households), person_of), 200))
    conn = connect(tmp_path / "s.db", durable=False)
    migrate_households(conn)
    _feed(conn, chunks[:2])
    before = conn.execute("SELECT count(*), sum(length(state)) FROM households_models").fetchone()
    conn.execute("BEGIN")
    HouseholdProcessor(load()).process(conn, chunks[2])
    conn.execute("ROLLBACK")
    after = conn.execute("SELECT count(*), sum(length(state)) FROM households_models").fetchone()
    assert after == before
