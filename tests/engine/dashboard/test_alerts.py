"""Alerts: the newest alerts with their delivery state and reason, counts per state, and the
outbox depth the health view charts."""

from __future__ import annotations

from pathlib import Path

from bond.config import AlertRule, AlertsConfig, Config
from engine.alerts import outbox
from engine.dashboard.alerts import alerts_page, pending
from tests.engine.dashboard.dashboard_support import HookedEngine, dashboard, log_in


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


def test_the_alerts_page_on_from_next_to_the_oldest(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    engine.identify("laptop", 1_000, email="grace@example.com")
    engine.run()
    conn = engine.worker.conn
    grace = engine.reader.find(email="grace@example.com")
    assert grace is not None
    ids = [
        outbox.enqueue(conn, rule="vip", kind="event", person_id=grace, summary=f"#{n}", payload={})
        for n in range(5)
    ]
    with dashboard(engine.config) as client:
        log_in(client)
        first = client.get("/dashboard/api/alerts", params={"limit": 2}).json()
        second = client.get(
            "/dashboard/api/alerts", params={"limit": 2, "before": first["next"]}
        ).json()
        last = client.get("/dashboard/api/alerts", params={"limit": 2, "before": second["next"]})
        bad = client.get("/dashboard/api/alerts", params={"before": "x"})

    pages = [first, second, last.json()]
    assert [[a["id"] for a in page["alerts"]] for page in pages] == [
        [ids[4], ids[3]],
        [ids[2], ids[1]],
        [ids[0]],
    ]
    assert last.json()["next"] is None  # the oldest alert: no page of nothing after it
    assert all(page["counts"] == {"pending": 5, "sent": 0, "failed": 0} for page in pages)
    assert (bad.status_code, bad.json()["reason"]) == (400, "before must be an integer")
    engine.close()
