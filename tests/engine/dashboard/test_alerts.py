"""Alerts: the newest alerts with their delivery state and reason, counts per state, and the
outbox depth the health view charts."""

from __future__ import annotations

from pathlib import Path

from bond.config import AlertRule, AlertsConfig, Config
from engine.alerts import outbox
from engine.dashboard.alerts import alerts_page, pending
from tests.engine.dashboard.dashboard_support import HookedEngine


def test_alerts_show_their_state_their_reason_and_who_they_are_about(data_dir: Path) -> None:
    rule = AlertRule(name="big checkout", kind="identified", threshold=50)
    engine = HookedEngine(data_dir, Config(alerts=AlertsConfig(rules=(rule,))))
    engine.view("laptop", 1_000, "Moss Teapot", 68)
    engine.identify("laptop", 2_000, email="grace@example.com")
    engine.order("laptop", 3_000, "FK-9", 68)
    engine.run()
    conn = engine.worker.conn
    written = outbox.recent(conn)
    assert [a.rule for a in written] == ["big checkout"]  # the worker wrote it, pending
    grace = written[0].person_id
    sent = outbox.enqueue(conn, rule="vip", kind="event", person_id=grace, summary="s", payload={})
    outbox.mark_sent(conn, sent, message_id="m-1")
    failed = outbox.enqueue(
        conn, rule="vip", kind="event", person_id=grace, summary="f", payload={}
    )
    outbox.mark_failed(conn, failed, error="404 from Discord: unknown webhook")

    page = alerts_page(engine.reader, 50)

    assert page["counts"] == {"pending": 1, "sent": 1, "failed": 1}
    assert [(a["state"], a["last_error"]) for a in page["alerts"]] == [
        ("failed", "404 from Discord: unknown webhook"),
        ("sent", None),
        ("pending", None),
    ]
    assert {a["person"]["name"] for a in page["alerts"]} == {"grace@example.com"}
    assert pending(engine.reader) == 1
    engine.close()
