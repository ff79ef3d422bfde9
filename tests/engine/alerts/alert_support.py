"""Shared pieces of the alert tests: a fake Discord, an outbox on a real SQLite file.

Not a conftest.py: a second module named conftest would shadow the root one, whose helpers
these tests import.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from bond.config import AlertRule, AlertsConfig, Config
from bond.storage.eventlog import NewEvent, SqliteEventLog
from bond.storage.sqlite import connect
from engine.alerts import outbox
from engine.alerts.fake_discord import Bucket, FakeDiscord
from engine.alerts.hook import AlertsHook
from engine.hooks import Hook
from engine.worker import Worker


@contextmanager
def fake_discord(bucket: Bucket | None = None) -> Iterator[FakeDiscord]:
    fake = FakeDiscord(bucket=bucket).start()
    try:
        yield fake
    finally:
        fake.stop()


@contextmanager
def outbox_db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    outbox.migrate_outbox(conn)
    try:
        yield conn
    finally:
        conn.close()


class AlertEngine:
    """The real worker with the alerts hook, fed one Segment message at a time, in-process."""

    def __init__(self, data_dir: Path, *rules: AlertRule, hooks: Sequence[Hook] = ()) -> None:
        self.config = Config(data_dir=data_dir, alerts=AlertsConfig(rules=rules))
        self.log = SqliteEventLog(self.config.events_db)
        self.worker = Worker(self.config, [*hooks, AlertsHook(self.config)])
        self._ids = itertools.count(1)

    def send(self, type_: str, *, anon: str | None = "browser-1", ts: int, **body: Any) -> None:
        """Append an event as the collector would; `anon=None` is one the site's server sent."""
        message_id = f"m-{next(self._ids)}"
        message = {"type": type_, "messageId": message_id, "anonymousId": anon, **body}
        event = NewEvent(
            "default",
            message_id,
            type_,
            anon,
            body.get("userId"),
            body.get("event"),
            ts,
            ts,
            None,
            None,
            orjson.dumps(message),
        )
        self.log.append([event], [])

    def apply(self) -> None:
        while self.worker.run_once():
            pass

    def alerts(self) -> list[outbox.Alert]:
        return outbox.recent(self.worker.conn)[::-1]

    def close(self) -> None:
        self.worker.close()
        self.log.close()
