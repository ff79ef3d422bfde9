"""Paging through what the read API serves while the worker goes on applying events: every row
that was there when paging began comes exactly once, in order, however the pages fall."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from tests.engine.harness import Engine

BROWSERS = 8


def test_timeline_pages_give_each_event_once_while_the_worker_applies_more(engine: Engine) -> None:
    # One login on many browsers whose times tie with each other's: a page reads only the
    # browsers with the newest events, so ties at the edge must not lose or repeat a row.
    for n in range(BROWSERS):
        for k in range(4):
            engine.track(f"kiosk-{n}", 100 * (n % 3) + k)
        engine.identify(f"kiosk-{n}", 1_000 + n, user="team")
    engine.run()
    team = engine.reader.find(user_id="team")
    assert team is not None
    there = {e["seq"] for e in engine.reader.timeline(team, 500).events}

    seen: list[tuple[int, int]] = []
    cursor = None
    for written in range(1, 100):
        page = engine.reader.timeline(team, 3, cursor)
        seen += [(e["timestamp"], e["seq"]) for e in page.events]
        # Between pages: a newer event, a late one from long ago, and a new browser logging in.
        engine.track(f"kiosk-{written % BROWSERS}", 2_000 + written)
        engine.track(f"kiosk-{written % BROWSERS}", 150)
        engine.identify(f"late-{written}", 2_000 + written, user="team")
        engine.run()
        if page.next is None:
            break
        cursor = page.next

    seqs = [seq for _ts, seq in seen]
    assert len(seqs) == len(set(seqs))
    assert there <= set(seqs)
    assert seen == sorted(seen, reverse=True)


def test_a_persons_identity_events_page_once_each_while_more_are_written(engine: Engine) -> None:
    # Pat's identity events name Pat on either side: browsers joined to Pat (Pat first), and
    # shared computers where someone else logged in after Pat (Pat second).
    for n in range(4):
        engine.track(f"device-{n}", 10 * n)
        engine.identify(f"device-{n}", 10 * n + 1, user="pat")
        engine.identify(f"pc-{n}", 10 * n + 2, user="pat")
        engine.identify(f"pc-{n}", 10 * n + 3, user=f"guest-{n}")
    engine.run()
    pat = engine.reader.find(user_id="pat")
    assert pat is not None
    there = {e["id"] for e in engine.reader.identity_events(500, person_id=pat)}
    assert len(there) == 8

    seen: list[int] = []
    before = None
    for written in range(1, 100):
        page = engine.reader.identity_events(2, before, pat)
        assert all(pat in (e["person_id"], e["other_person_id"]) for e in page)
        seen += [e["id"] for e in page]
        # Between pages, new identity events naming Pat, on both sides.
        engine.track(f"new-device-{written}", 100 + written)
        engine.identify(f"new-device-{written}", 101 + written, user="pat")
        engine.identify(f"new-pc-{written}", 100 + written, user="pat")
        engine.identify(f"new-pc-{written}", 101 + written, user=f"new-guest-{written}")
        engine.run()
        if len(page) < 2:
            break
        before = page[-1]["id"]

    assert len(seen) == len(set(seen))
    assert there <= set(seen)
    assert seen == sorted(seen, reverse=True)


def test_the_people_list_walks_each_person_once_while_the_worker_applies_more(
    engine: Engine,
) -> None:
    # Pat logs in on a shared PC and browses on; ten people log in on their own desks, in
    # pairs at the same time (ties are ordered by id).
    engine.identify("shared-pc", 100, user="pat")
    engine.track("shared-pc", 5_000)
    for n in range(10):
        engine.identify(f"desk-{n}", 1_000 + 10 * (n // 2), user=f"p-{n}")
    engine.run()
    names = ["pat"] + [f"p-{n}" for n in range(9, -1, -1)]
    ids = {name: engine.reader.find(user_id=name) for name in names}
    assert [person["id"] for person in walk(engine, 500)] == [ids[name] for name in names]

    def between(page: int) -> None:
        if page == 1:
            # Gus's login on the shared PC arrives late, from before Pat's browsing: that
            # browsing is Gus's now, and Pat's last_seen goes back to Pat's login.
            engine.identify("shared-pc", 200, user="gus")
            engine.track("desk-9", 6_000)  # shown on the first page, active again
            engine.track("desk-2", 6_100)  # not shown yet, active again
        engine.identify(f"newbie-{page}", 7_000 + page, user=f"newbie-{page}")
        engine.run()

    seen = walk(engine, 3, between)
    keys = [(person["active_at"], person["id"]) for person in seen]
    assert keys == sorted(set(keys), reverse=True)  # newest first, nobody twice
    # Everyone there at the start who was not active again during the walk came, once: Pat
    # too, though Pat's last_seen went back below where the walk had got to.
    assert [person["id"] for person in seen] == [
        ids[name] for name in ["pat", "p-9", "p-8", "p-7", "p-6", "p-5", "p-4", "p-3", "p-1", "p-0"]
    ]
    # Whoever became active during the walk is at the top of the next one.
    again = walk(engine, 500)
    newbies = [engine.reader.find(user_id=f"newbie-{n}") for n in range(4, 0, -1)]
    gus = engine.reader.find(user_id="gus")
    assert [person["id"] for person in again][:8] == [
        *newbies,
        ids["p-2"],
        ids["p-9"],
        gus,
        ids["pat"],
    ]
    assert next(p for p in again if p["id"] == ids["pat"])["last_seen"] == 100


def walk(
    engine: Engine, limit: int, between: Callable[[int], None] = lambda page: None
) -> list[dict[str, Any]]:
    """Every page of the people list, each read with the previous one's `next`."""
    seen: list[dict[str, Any]] = []
    pages = itertools.count(1)
    cursor = None
    while True:
        found = engine.reader.people(limit, cursor)
        seen += found.people
        between(next(pages))
        if found.next is None:
            return seen
        cursor = found.next
