"""What the read side asks SQLite for: indexes rather than scans, and work bounded by the page.

Asserted on the statements the reader runs (traced) and their query plans, not on time: a
person's identity events must not read everyone's, and a person with many browsers (one login a
team shares) must not cost a query per browser for each page or each identification.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from tests.engine.harness import Engine

T = TypeVar("T")
KIOSKS = 12


def traced(conn: sqlite3.Connection, call: Callable[[], T]) -> tuple[T, list[str]]:
    """What `call` returns, and every statement it ran on `conn` (parameters filled in)."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        return call(), statements
    finally:
        conn.set_trace_callback(None)


def plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def team_on_kiosks(engine: Engine) -> int:
    """One login shared by KIOSKS browsers, each used a while and then logged in: three
    anonymous events and the identify, at times apart from the other kiosks'."""
    for n in range(KIOSKS):
        for k in range(3):
            engine.track(f"kiosk-{n}", 1_000 * n + k)
        engine.identify(f"kiosk-{n}", 1_000 * n + 10, user="team")
    engine.run()
    team = engine.reader.find(user_id="team")
    assert team is not None
    return team


def test_a_persons_identity_events_are_found_through_indexes(engine: Engine) -> None:
    engine.identify("family-pc", 100, user="alice")
    engine.identify("family-pc", 200, user="bob")  # refused: names bob, and alice on the other side
    engine.identify("laptop", 300, user="carol")
    engine.run()
    alice = engine.reader.find(user_id="alice")
    assert alice is not None

    events, statements = traced(
        engine.reader.conn, lambda: engine.reader.identity_events(50, person_id=alice)
    )

    assert [(e["kind"], e["reason"]) for e in events] == [
        ("refused", "shared_browser"),
        ("identified", None),
    ]
    reads = [d for sql in statements for d in plan(engine.reader.conn, sql)]
    on_table = [d for d in reads if "identity_events" in d and "SUBQUERY" not in d]
    assert on_table
    # Through the person on either side, or by id one row at a time; never a range of ids
    # (everyone's identity events, newest first) filtered for the person.
    assert all(
        any(key in d for key in ("(person_id=?", "(other_person_id=?", "(rowid=?)"))
        for d in on_table
    ), on_table


def test_a_timeline_page_reads_only_the_browsers_that_can_hold_its_events(engine: Engine) -> None:
    team = team_on_kiosks(engine)

    page, statements = traced(engine.reader.conn, lambda: engine.reader.timeline(team, 3))

    assert [e["timestamp"] for e in page.events] == [
        1_000 * (KIOSKS - 1) + 10,
        1_000 * (KIOSKS - 1) + 2,
        1_000 * (KIOSKS - 1) + 1,
    ]
    per_browser = [s for s in statements if "FROM timeline WHERE browser_id" in s]
    # At most a page and one (limit + 1) browsers read row by row, not all KIOSKS of them.
    assert 1 <= len(per_browser) <= 4, statements


def test_a_persons_orders_are_read_through_their_index_not_between_them(engine: Engine) -> None:
    team = team_on_kiosks(engine)
    engine.track("kiosk-3", 3_500, event="Order Completed")
    engine.track("kiosk-7", 7_500, event="Order Completed")
    engine.run()

    page, statements = traced(
        engine.reader.conn, lambda: engine.reader.timeline(team, 10, orders_only=True)
    )

    assert [e["timestamp"] for e in page.events] == [7_500, 3_500]
    reads = [s for s in statements if "FROM timeline" in s]
    assert reads and all("timeline_orders" in s for s in reads), statements
    # Through the index: the planner would otherwise take the primary key and step over every
    # page view between two orders.
    for sql in reads:
        assert any("USING INDEX timeline_orders" in step for step in plan(engine.reader.conn, sql))


def test_a_browsers_identification_is_looked_up_only_where_it_can_be(engine: Engine) -> None:
    team = team_on_kiosks(engine)
    for n in range(KIOSKS):  # every kiosk in use again later: their spans all overlap
        engine.track(f"kiosk-{n}", 100_000 + n)
    engine.run()

    ranges, statements = traced(engine.reader.conn, lambda: engine.reader.stitch_ranges(team))

    identified = {r.anonymous_id: r.identified_from for r in ranges}
    assert len(identified) == KIOSKS
    for n in range(KIOSKS):
        found = identified[f"kiosk-{n}"]
        assert found is not None and found.ts == 1_000 * n + 10
    # One lookup per identification, in the browser whose visit began nearest before it: not
    # one per browser for every identification (KIOSKS * KIOSKS).
    assert len(lookups(statements)) == KIOSKS, statements

    # Only the newest identifications are read (a person may have thousands): the browsers
    # whose own one is older are not searched for the newer ones either.
    ranges, statements = traced(
        engine.reader.conn, lambda: engine.reader.stitch_ranges(team, max_changes=3)
    )
    newest = {r.anonymous_id for r in ranges if r.identified_from is not None}
    assert newest == {f"kiosk-{n}" for n in range(KIOSKS - 3, KIOSKS)}
    assert len(lookups(statements)) == 3, statements


def lookups(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT 1 FROM timeline")]
