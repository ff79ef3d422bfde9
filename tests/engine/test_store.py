"""The identity state as the worker writes it back: rows a batch leaves behind, read as before."""

from __future__ import annotations

from engine.rows import ROWS_PER_STATEMENT
from tests.engine.harness import Engine


def test_an_event_without_a_name_keeps_none_on_the_timeline(engine: Engine) -> None:
    engine.send("page", anon="anon-1", ts=100, properties={"path": "/"})
    engine.track("anon-1", 200, event="Product Viewed")
    engine.run()

    events = engine.timeline(anonymous_id="anon-1")
    assert [(e["type"], e["event"]) for e in events] == [
        ("track", "Product Viewed"),
        ("page", None),
    ]
    (stored,) = engine.worker.conn.execute(
        "SELECT count(*) FROM timeline WHERE name IS NULL"
    ).fetchone()
    assert stored == 1


def test_counters_of_many_persons_move_in_one_batch(engine: Engine) -> None:
    browsers = [f"anon-{n}" for n in range(2 * ROWS_PER_STATEMENT + 7)]
    for browser in browsers:
        engine.track(browser, 100)
    engine.run()
    for ts in (50, 300):
        for browser in browsers:
            engine.track(browser, ts)
    engine.run()

    for browser in browsers:
        person = engine.person(anonymous_id=browser)
        assert (person["event_count"], person["first_seen"]) == (3, 50)
        assert person["last_seen"] == 300
