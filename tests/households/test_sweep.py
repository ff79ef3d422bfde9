"""A session is learnt the moment the stream's time passes its end, whichever browser was busy.

The processor does not look for ended sessions on every event: it compares the event's time with
the least recently active open session only. These pin that this session is the right one after
an event moves the one that was least recently active to the back.
"""

from __future__ import annotations

from pathlib import Path

from bond.storage.sqlite import connect
from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.calibration import load
from engine.households.processor import HouseholdProcessor
from engine.households.store import migrate_households
from tests.households.support import account_event, feed

MINUTE = 60_000
START = 1_700_006_400_000


def _event(seq: int, device: str, at: int, name: str = "Product Viewed") -> AppliedEvent:
    properties = {"category": "books", "order_id": f"o-{seq}"}
    return account_event(device, at, name, properties, seq=seq)


def _sessions_learnt_before_the_order(path: Path, batches: list[list[AppliedEvent]]) -> int:
    conn = connect(path, durable=False)
    migrate_households(conn)
    feed(conn, HouseholdProcessor(load()), batches)
    (order,) = store.attributions(conn)
    return order.sessions_seen


def test_the_session_left_least_recently_active_is_closed_when_its_time_passes(
    tmp_path: Path,
) -> None:
    # Browser a, then b, then a again: b is now the least recently active, and ended 30 minutes
    # after its event, before the order placed on a third browser.
    events = [
        _event(1, "a", START),
        _event(2, "b", START + MINUTE),
        _event(3, "a", START + 2 * MINUTE),
        _event(4, "c", START + 31 * MINUTE + 1_000, "Order Completed"),
    ]
    assert _sessions_learnt_before_the_order(tmp_path / "one.db", [events]) == 1
    assert _sessions_learnt_before_the_order(tmp_path / "each.db", [[e] for e in events]) == 1
