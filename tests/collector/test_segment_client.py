"""An unmodified Segment server-side client sends to Bond with only `host` changed."""

from __future__ import annotations

import sqlite3

from segment.analytics.client import Client

from conftest import WRITE_KEY, Collector


def test_segment_analytics_python_events_land_in_the_log(collector: Collector) -> None:
    failures: list[Exception] = []
    client = Client(
        WRITE_KEY,
        host=collector.url,
        gzip=True,
        on_error=lambda error, _batch: failures.append(error),
    )
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
