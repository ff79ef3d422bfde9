"""The live stream: raw events from the event log in arrival order, each with its person.

The log is read by offset (`read_after`), so a page costs the same on a log of any length. An
event's person comes from the identity state; an event the worker has not applied yet has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bond.errors import StorageError
from bond.storage.eventlog import SqliteEventLog, StoredEvent
from engine.alerts.money import currency_code
from engine.alerts.person import order_value
from engine.dashboard.labels import People, short
from engine.timeline import IdentityReader

LIVE_PAGE = 50
MAX_BATCH = 200


class LogTail:
    """The event log, opened once the collector has created it (the read API may come first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log: SqliteEventLog | None = None

    def open(self) -> SqliteEventLog | None:
        if self._log is None and self.path.exists():
            try:
                self._log = SqliteEventLog(self.path)
            except StorageError:
                return None
        return self._log

    def head(self) -> int:
        log = self.open()
        return log.head() if log else 0

    def after(self, seq: int, limit: int = MAX_BATCH) -> list[StoredEvent]:
        log = self.open()
        return log.read_after(seq, limit) if log else []

    def latest(self, limit: int = LIVE_PAGE) -> list[StoredEvent]:
        return self.after(max(self.head() - limit, 0), limit)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def live_events(
    events: Sequence[StoredEvent], reader: IdentityReader, applied_through: int
) -> list[dict[str, Any]]:
    people = People(reader)
    return [live_event(e, people, reader, e.seq <= applied_through) for e in events]


def live_event(
    event: StoredEvent, people: People, reader: IdentityReader, applied: bool
) -> dict[str, Any]:
    body = _object(orjson.loads(event.body))
    props = _object(body.get("properties"))
    page = _object(_object(body.get("context")).get("page"))
    person = None
    if applied:
        owner = reader.owner_at(event.anonymous_id, event.user_id, event.timestamp)
        person = people.label(owner)
    return {
        "seq": event.seq,
        "received_at": event.received_at,
        "timestamp": event.timestamp,
        "type": event.type,
        "name": short(event.event or body.get("name") or props.get("title")),
        "page": short(_path(page) or _path(props)),
        **_detail(event.type, event.event, props),
        "anonymous_id": short(event.anonymous_id),
        "identified": bool(person["identified"]) if person else event.user_id is not None,
        "person": person,
    }


def _detail(type_: str, name: str | None, props: dict[str, Any]) -> dict[str, Any]:
    """The one property worth a glance: an order's value and currency (the page formats them
    as the person page does), else the product."""
    shown: dict[str, Any] = {"detail": None, "value": None, "currency": None}
    if type_ != "track":
        return shown
    value = order_value({"event": name, "properties": props})
    if value is None:
        shown["detail"] = short(props.get("name") or props.get("product_id"))
    else:
        shown.update(value=value, currency=currency_code(props.get("currency")))
    return shown


def _path(where: dict[str, Any]) -> str | None:
    """A page's path with its query string: /product.html?id=monstera, not just /product.html."""
    path = where.get("path")
    if not isinstance(path, str):
        return None
    search = where.get("search")
    return path + search if isinstance(search, str) and search.startswith("?") else path


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
