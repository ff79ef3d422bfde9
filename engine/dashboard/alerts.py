"""Alerts: the newest Discord alerts with their delivery state, and how many are in each state."""

from __future__ import annotations

from typing import Any

from engine.alerts import outbox
from engine.dashboard.labels import People
from engine.dashboard.tables import has_table
from engine.timeline import IdentityReader

STATES = ("pending", "sent", "failed")


def alerts_page(reader: IdentityReader, limit: int) -> dict[str, Any]:
    people = People(reader)
    alerts = []
    for alert in outbox.recent(reader.conn, max(1, min(limit, 200))):
        shown = alert.public()
        shown["person"] = people.label(alert.person_id)
        alerts.append(shown)
    return {"alerts": alerts, "counts": state_counts(reader)}


def state_counts(reader: IdentityReader) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    if has_table(reader.conn, "alert_outbox"):
        for state, n in reader.conn.execute(
            "SELECT state, count(*) FROM alert_outbox GROUP BY state"
        ):
            counts[state] = n
    return counts


def pending(reader: IdentityReader) -> int:
    """The outbox depth, through the partial index the sender uses."""
    if not has_table(reader.conn, "alert_outbox"):
        return 0
    row = reader.conn.execute("SELECT count(*) FROM alert_outbox WHERE state = 'pending'")
    return int(row.fetchone()[0])
