"""Paging through what the read API serves while the worker goes on applying events: every row
that was there when paging began comes exactly once, in order, however the pages fall."""

from __future__ import annotations

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
