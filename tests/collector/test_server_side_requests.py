"""Whose address and user agent an event gets: a browser's request is the visitor's, a server's
is not.

A shop's backend sends events for its shoppers through Segment's server libraries (Segment
recommends it for orders), from its own address and as `analytics-python/2.4.0`. Taken for the
visitor's, they made every shopper browse from the shop's server: in the event log, in the
person's export, as a desktop device in their household. Browsers send `Origin` with every
POST, `fetch` or `sendBeacon`, same-origin or not; the server libraries never do.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pytest

from conftest import Collector, segment_client

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("server-side") / "data").start()
    yield collector
    collector.stop()


def enrichment(server: Collector, *message_ids: str) -> dict[str, tuple[str | None, ...]]:
    """Each stored event's IP and user agent, by message id."""
    marks = ", ".join("?" * len(message_ids))
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        rows = conn.execute(
            f"SELECT message_id, ip, user_agent FROM events WHERE message_id IN ({marks})",
            message_ids,
        ).fetchall()
    return {message_id: (ip, agent) for message_id, ip, agent in rows}


def test_a_server_librarys_events_get_neither_its_address_nor_its_user_agent(
    server: Collector,
) -> None:
    shop, failures = segment_client(server, gzip=True, sync_mode=True)
    order, login, passed_on = (str(uuid.uuid4()) for _ in range(3))
    shop.track("u-1", "Order Completed", {"total": 40}, anonymous_id="b-1", message_id=order)
    shop.identify("u-1", {"email": "ada@example.com"}, message_id=login)
    # What the shopper's own request said, passed on by the shop as Segment documents: kept.
    shopper = {"ip": "203.0.113.9", "userAgent": IPHONE}
    shop.track("u-1", "Order Completed", {"total": 9}, context=shopper, message_id=passed_on)
    assert failures == []

    assert enrichment(server, order, login, passed_on) == {
        order: (None, None),
        login: (None, None),
        passed_on: ("203.0.113.0", IPHONE),
    }
