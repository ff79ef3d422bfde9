"""Alerts: the newest Discord alerts with their delivery state, and how many are in each state."""

from __future__ import annotations

from typing import Any

from engine.alerts import outbox
from engine.dashboard.labels import People
from engine.dashboard.tables import has_table
from engine.timeline import IdentityReader

STATES = ("pending", "sent", "failed")


def alerts_page(reader: IdentityReader, limit: int, before: int | None = None) -> dict[str, Any]:
    """The newest `limit` alerts older than the alert id `before`; `next` continues from the
    last of them, and is None when nothing older is left (one row more says so)."""
    limit = max(1, min(limit, 200))
    found = outbox.recent(reader.conn, limit + 1, before=before)
    people = People(reader)
    alerts = []
    for alert in found[:limit]:
        shown = alert.public()
        shown["person"] = people.label(alert.person_id)
        alerts.append(shown)
    more = len(found) > limit
    return {
        "alerts": alerts,
        "counts": state_counts(reader),
        "webhook": webhook(reader),
        "next": alerts[-1]["id"] if more else None,
    }


def state_counts(reader: IdentityReader) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    if has_table(reader.conn, "alert_outbox"):
        for state, n in reader.conn.execute(
            "SELECT state, count(*) FROM alert_outbox GROUP BY state"
        ):
            counts[state] = n
    return counts


def webhook(reader: IdentityReader) -> bool | None:
    """Whether the worker that last started has a webhook to deliver to; None before any
    worker said (one from before this was recorded, or none yet)."""
    if not has_table(reader.conn, "alert_delivery"):
        return None
    row = reader.conn.execute("SELECT webhook FROM alert_delivery WHERE id = 1").fetchone()
    return None if row is None else bool(row[0])


def pending(reader: IdentityReader) -> int:
    """The outbox depth, through the partial index the sender uses."""
    if not has_table(reader.conn, "alert_outbox"):
        return 0
    row = reader.conn.execute("SELECT count(*) FROM alert_outbox WHERE state = 'pending'")
    return int(row.fetchone()[0])
