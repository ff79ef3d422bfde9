"""Shared pieces of the alert tests: a fake Discord, an outbox on a real SQLite file, logs.

Not a conftest.py: that name would shadow the repository's root conftest module here.
"""

from __future__ import annotations

import io
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from bond import logs
from bond.storage.sqlite import connect
from engine.alerts import outbox
from engine.alerts.fake_discord import Bucket, FakeDiscord


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


class LogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self, event: str) -> list[dict[str, Any]]:
        lines = [orjson.loads(line) for line in self.text.splitlines() if line]
        return [line for line in lines if line["event"] == event]


@contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Bond's JSON log lines written inside the block."""
    capture = LogCapture()
    logs.redirect(capture.stream)
    try:
        yield capture
    finally:
        logs.redirect(sys.stderr)
