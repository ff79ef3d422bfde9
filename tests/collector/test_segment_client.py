"""An unmodified Segment server-side client sends to Bond with only `host` changed."""

from __future__ import annotations

import sqlite3

from conftest import Collector, segment_client


def test_segment_analytics_python_events_land_in_the_log(collector: Collector) -> None:
    client, failures = segment_client(collector, gzip=True)
    client.identify("user-42", {"email": "ada@example.com", "plan": "pro"})
    client.track("user-42", "Order Completed", {"value": 99.5, "currency": "EUR"})
    client.page("user-42", category="Docs", name="Install")
    client.alias("anon-7", "user-42")
    client.group("user-42", "acme", {"name": "Acme"})
    client.flush()
    client.shutdown()
    assert failures == []

    with sqlite3.connect(collector.data_dir / "events.db") as conn:
        rows = conn.execute("SELECT type, user_id, event FROM events ORDER BY seq").fetchall()
    assert rows == [
        ("identify", "user-42", None),
        ("track", "user-42", "Order Completed"),
        ("page", "user-42", "Install"),
        ("alias", "user-42", None),
        ("group", "user-42", None),
    ]
