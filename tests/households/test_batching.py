"""An order's attribution does not depend on how the worker batched the events before it.

A worker catching up on a backlog (after downtime, or a backfill) takes it in a few big batches;
live, the same traffic comes a little at a time. Each order must be judged with the model as it
stood at that moment either way: the sessions that ended before it learnt, the refits that came
due run.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path
from typing import Any

from bond.storage.sqlite import connect
from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.calibration import load
from engine.households.processor import HouseholdProcessor
from engine.households.store import migrate_households
from tests.households.support import account_event, feed

HOUR = 3_600_000
DAY = 24 * HOUR
START = 1_700_006_400_000  # a midnight UTC
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


def _two_people(days: int = 28) -> list[AppliedEvent]:
    """One account: person 1 on a desktop at 08:00 buying electronics, person 2 on an iPhone at
    21:00 buying fashion, each with their own orders (order ids say whose)."""
    rng = random.Random(1)
    events: list[AppliedEvent] = []

    def event(device: str, agent: str, at: int, name: str, properties: dict[str, Any]) -> None:
        events.append(account_event(device, at, name, properties, agent=agent))

    for d in range(days):
        day = START + d * DAY
        morning = day + 8 * HOUR + rng.randint(0, 20) * 60_000
        for i in range(4):
            viewed = {"category": "electronics"}
            event("desk", DESKTOP, morning + i * 60_000, "Product Viewed", viewed)
        if d % 7 == 3:
            order = {"order_id": f"p1-{d}", "revenue": 300, "category": "electronics"}
            event("desk", DESKTOP, morning + 5 * 60_000, "Order Completed", order)
        evening = day + 21 * HOUR + rng.randint(0, 20) * 60_000
        for i in range(4):
            event("phone", IPHONE, evening + i * 60_000, "Product Viewed", {"category": "fashion"})
        if d % 5 == 4:
            order = {"order_id": f"p2-{d}", "revenue": 30, "category": "fashion"}
            event("phone", IPHONE, evening + 5 * 60_000, "Order Completed", order)
    events.sort(key=lambda e: e.timestamp)
    return [e._replace(seq=seq) for seq, e in enumerate(events, start=1)]


def _attributed(path: Path, chunks: list[list[AppliedEvent]]) -> dict[str, str]:
    """Whose each order was judged to be ("p1", "p2"), fed in `chunks` as the worker's batches."""
    conn = connect(path, durable=False)
    migrate_households(conn)
    feed(conn, HouseholdProcessor(load()), chunks)
    sessions = store.all_sessions(conn)
    # Each person's member: the one most of their browser's sessions ended up with.
    member_of = {
        device: Counter(s.member_id for s in sessions if s.device == device).most_common(1)[0][0]
        for device in ("desk", "phone")
    }
    assert member_of["desk"] != member_of["phone"]
    person_of = {member_of["desk"]: "p1", member_of["phone"]: "p2"}
    return {str(a.order_id): person_of.get(a.member_id, "?") for a in store.attributions(conn)}


def test_a_backlog_in_big_batches_is_attributed_as_it_was_live(tmp_path: Path) -> None:
    events = _two_people()
    daily = [list(g) for _, g in itertools.groupby(events, key=lambda e: e.timestamp // DAY)]
    halves = [events[: len(events) // 2], events[len(events) // 2 :]]

    live = _attributed(tmp_path / "live.db", daily)
    backlog = _attributed(tmp_path / "backlog.db", [events])
    two = _attributed(tmp_path / "two.db", halves)

    orders = sorted(live)
    assert len(orders) == 9
    # Person 2's orders once the account has two weeks behind it (the first one, at nine
    # sessions, comes while the model is still one member, in any batching).
    settled = [o for o in orders if o.startswith("p2-") and int(o.split("-")[1]) >= 7]
    assert len(settled) == 4
    for attributed in (live, backlog, two):
        assert all(attributed[o] == "p2" for o in settled), attributed
    for attributed in (backlog, two):
        assert sum(attributed[o] == live[o] for o in orders) >= len(orders) - 1, attributed
