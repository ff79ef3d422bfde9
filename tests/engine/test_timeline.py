"""Reading a person's stitched timeline: where their newest event before a point is."""

from __future__ import annotations

from engine.timeline import Cursor
from tests.engine.harness import Engine


def newest_before(engine: Engine, user: str, ts: int) -> Cursor | None:
    person = engine.reader.find(user_id=user)
    assert person is not None
    return engine.reader.latest_before(person, Cursor(ts, 0))  # seq 0: before ts itself


def test_latest_before_looks_across_the_persons_browsers(engine: Engine) -> None:
    engine.track("laptop", 100)
    engine.track("phone", 200)
    engine.identify("laptop", 300, user="u1")
    engine.identify("phone", 400, user="u1")
    engine.run()

    found = newest_before(engine, "u1", 300)
    assert found is not None and found.ts == 200
    assert newest_before(engine, "u1", 250) == Cursor(200, found.seq)
    assert newest_before(engine, "u1", 100) is None
    page = engine.timeline(user_id="u1")
    assert newest_before(engine, "u1", 10**6) == Cursor(page[0]["timestamp"], page[0]["seq"])


def test_latest_before_stays_inside_the_persons_part_of_a_shared_browser(engine: Engine) -> None:
    engine.identify("family-pc", 100, user="alice")
    engine.track("family-pc", 200)
    engine.identify("family-pc", 300, user="bob")
    engine.track("family-pc", 400)
    engine.run()

    alice = newest_before(engine, "alice", 10**6)
    assert alice is not None and alice.ts == 200
    bob = newest_before(engine, "bob", 350)
    assert bob is not None and bob.ts == 300
