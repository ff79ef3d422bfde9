"""The processor in the worker's batches: restarts, rollbacks and erasures lose and add nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bond.storage.sqlite import connect
from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.calibration import load
from engine.households.processor import HouseholdProcessor
from engine.households.sessions import CONVERSION
from engine.households.store import migrate_households
from engine.households.window import REFIT_WINDOW, Windows
from tests.households.support import event_batches, feed, simulated

MODELS = "SELECT person_id, state FROM households_models ORDER BY person_id"


def _state(path: Path) -> sqlite3.Connection:
    conn = connect(path, durable=False)
    migrate_households(conn)
    return conn


def _everything(conn: sqlite3.Connection) -> tuple[object, ...]:
    return (
        store.attributions(conn),
        store.all_sessions(conn),
        store.drift_events(conn),
        conn.execute(MODELS).fetchall(),
        conn.execute("SELECT * FROM households_open ORDER BY device").fetchall(),
    )


def test_a_restart_between_batches_changes_nothing(tmp_path: Path) -> None:
    chunks = event_batches(simulated(12, seed=21), 300)
    half = len(chunks) // 2
    one = _state(tmp_path / "one.db")
    feed(one, HouseholdProcessor(load()), chunks)

    first = _state(tmp_path / "two.db")
    feed(first, HouseholdProcessor(load()), chunks[:half])
    first.close()
    second = _state(tmp_path / "two.db")
    feed(second, HouseholdProcessor(load()), chunks[half:])

    assert _everything(second) == _everything(one)
    assert store.person_households(second, 1)["members"]


def test_a_rolled_back_batch_leaves_no_trace_and_the_next_one_starts_clean(
    tmp_path: Path,
) -> None:
    chunks = event_batches(simulated(6, seed=22), 200)
    clean = _state(tmp_path / "clean.db")
    feed(clean, HouseholdProcessor(load()), chunks)

    conn = _state(tmp_path / "s.db")
    processor = HouseholdProcessor(load())
    feed(conn, processor, chunks[:2])
    before = _everything(conn)
    conn.execute("BEGIN")
    processor.process(conn, chunks[2])
    conn.execute("ROLLBACK")
    assert _everything(conn) == before
    # The same processor goes on from what was committed, not from what it had in memory.
    feed(conn, processor, chunks[2:])
    assert _everything(conn) == _everything(clean)


def test_an_erased_account_is_not_brought_back_by_the_worker(tmp_path: Path) -> None:
    chunks = event_batches(simulated(6, seed=23), 200)
    conn = _state(tmp_path / "s.db")
    processor = HouseholdProcessor(load())
    feed(conn, processor, chunks[:-1])
    erased = {a.person_id for a in store.attributions(conn)}
    assert erased
    conn.execute("BEGIN")
    store.erase_persons(conn, sorted(erased))
    conn.execute("COMMIT")
    feed(conn, processor, chunks[-1:])
    models = {pid for pid, _ in conn.execute(MODELS)}
    later = {e.person_id for e in chunks[-1]}
    # Only accounts with events after the erasure have a model again, built from those alone.
    assert models <= later
    for pid in models & erased:
        assert store.load_state(conn, pid)["model"]["sessions_seen"] <= len(chunks[-1])


def test_anonymous_browsing_is_kept_only_until_a_login_continues_it(tmp_path: Path) -> None:
    conn = _state(tmp_path / "s.db")
    processor = HouseholdProcessor(load())

    def event(seq: int, minute: int, person: int, identified: bool, name: str) -> AppliedEvent:
        return AppliedEvent(
            seq, person, identified, "default", "track", name, "browser-1",
            "u1" if identified else None, minute * 60_000, 0, None,
            {"category": "books", "order_id": "o-1"}, {}, {"timezone": "UTC"},
        )  # fmt: skip

    feed(conn, processor, [[event(1, 0, 7, False, "Product Viewed")]])
    assert conn.execute("SELECT count(*) FROM households_open").fetchone()[0] == 0
    feed(conn, processor, [[event(2, 5, 9, True, "Order Completed")]])
    (saved,) = store.all_open(conn)
    assert saved["person_id"] == 9 and saved["events"] == 2
    assert saved["categories"] == {"books": 2}


def test_refit_windows_kept_in_memory_are_the_stored_ones(tmp_path: Path) -> None:
    conn = _state(tmp_path / "s.db")
    processor = HouseholdProcessor(load())
    feed(conn, processor, event_batches(simulated(8, seed=24), 300))
    persons = [pid for (pid,) in conn.execute("SELECT person_id FROM households_models")]
    for pid in persons:
        kept = processor.memory.windows.get(conn, pid)
        fresh = Windows().get(conn, pid)
        assert kept == fresh and len(kept) <= REFIT_WINDOW


def _sent_by_the_shop(event: AppliedEvent) -> AppliedEvent:
    """An order as the shop's server sends it: the user id alone, no browser, no time zone."""
    if event.event != CONVERSION:
        return event
    return event._replace(anonymous_id=None, user_agent=None, context={})


def test_orders_the_shops_server_sends_join_their_session_across_restarts(tmp_path: Path) -> None:
    (events,) = event_batches(simulated(6, seed=25), 10_000)
    events = [_sent_by_the_shop(e) for e in events]
    starts = [0] + [i for i, e in enumerate(events) if e.event == CONVERSION]
    # Each order first in a batch: its session, opened before, comes back from the database.
    chunks = [events[a:b] for a, b in zip(starts, [*starts[1:], len(events)], strict=True)]
    one = _state(tmp_path / "one.db")
    feed(one, HouseholdProcessor(load()), chunks)
    restarted = _state(tmp_path / "restarted.db")
    for chunk in chunks:  # a new worker for every batch
        feed(restarted, HouseholdProcessor(load()), [chunk])

    assert _everything(restarted) == _everything(one)
    browsers = {e.anonymous_id for e in events if e.anonymous_id}
    attributed = store.attributions(one)
    # Each judged on the browser it was placed in (in the simulator every order ends a session).
    assert len(attributed) == len(starts) - 1 and {a.device for a in attributed} <= browsers
