"""What an alert knows about a person, read by the real worker from a real event log: their
lifetime value counts every order of their history, however long it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_support import AlertEngine

from bond.config import AlertRule
from engine.alerts.money import Amounts
from engine.alerts.person import HISTORY_LIMIT, load_person
from engine.dashboard import people
from engine.timeline import IdentityReader
from tests.engine.harness import append_pages

T = 1_700_000_000_000
SECOND = 1_000
DAY = 24 * 3600 * SECOND
VIP = AlertRule(name="vip", kind="returned", min_lifetime_value=1_000)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[AlertEngine]:
    running = AlertEngine(tmp_path / "bond-data", VIP)
    yield running
    running.close()


def test_a_returning_customers_lifetime_value_counts_orders_older_than_their_history(
    engine: AlertEngine,
) -> None:
    """Ed ordered twice (once through the shop's server), then browsed page after page; when
    he comes back a week later his first orders still make him a VIP."""
    engine.send("identify", ts=T, userId="u-ed", traits={"email": "ed@example.com"})
    engine.send("track", ts=T + 1, event="Order Completed", properties={"total": 600})
    server = {"anon": None, "userId": "u-ed", "event": "Order Completed"}
    engine.send("track", ts=T + 2, properties={"total": 500}, **server)
    pages = range(T + SECOND, T + (HISTORY_LIMIT + 100) * SECOND, SECOND)
    append_pages(engine.log, "browser-1", pages)
    engine.apply()
    assert engine.alerts() == []
    engine.send("page", ts=T + 8 * DAY, properties={"path": "/"})
    engine.apply()

    [alert] = engine.alerts()
    fields = {f["name"]: f["value"] for f in alert.payload["embeds"][0]["fields"]}
    assert (alert.rule, fields["Lifetime value"]) == ("vip", "1,100.00")
    loaded = load_person(engine.worker.conn, alert.person_id)
    assert loaded is not None and loaded.lifetime_value == Amounts({None: 1_100.0})
    # The person page counts the same orders.
    found = people.orders(IdentityReader(engine.worker.conn), alert.person_id)
    assert found["totals"] == [{"currency": None, "value": 1_100.0}]
