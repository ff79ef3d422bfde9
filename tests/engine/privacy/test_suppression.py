"""The suppression list: re-read only when it changed and at most once a second, and the
worker's second line for events accepted before the collector saw the list."""

from __future__ import annotations

from pathlib import Path

from bond.storage.eventlog import SqliteEventLog
from engine.privacy.crypto import blind
from engine.privacy.suppression import SuppressionList
from tests.engine.harness import Engine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def suppress(log: SqliteEventLog, kind: str, value: str) -> None:
    log.suppress([blind(log.suppression_key(), kind, value)])


def test_the_list_is_reread_when_due_and_changed(data_dir: Path) -> None:
    writer = SqliteEventLog(data_dir / "events.db")
    clock = Clock()
    suppression = SuppressionList(SqliteEventLog(data_dir / "events.db"), clock)
    assert not suppression.active()

    suppress(writer, "email", "gone@example.com")
    clock.now = 0.5
    assert not suppression.active()  # not yet due: per-request cost stays a clock read
    clock.now = 1.0
    assert suppression.active()
    assert suppression.blocks(None, None, "gone@example.com")
    assert not suppression.blocks("anon", "user", "kept@example.com")

    writer.unsuppress([blind(writer.suppression_key(), "email", "gone@example.com")])
    clock.now = 2.0
    assert not suppression.active()
    writer.close()
    suppression.log.close()


def test_the_worker_drops_and_deletes_events_the_collector_let_through(engine: Engine) -> None:
    engine.identify("kept-browser", 100, user="kept")
    suppress(engine.log, "user_id", "gone")
    suppress(engine.log, "anonymous_id", "gone-phone")
    engine.worker.suppression.refresh(force=True)
    engine.track("gone-phone", 110)
    engine.identify("new-tab", 120, user="gone")
    engine.track("kept-browser", 130)
    engine.run()

    assert engine.reader.find(user_id="gone") is None
    assert engine.reader.find(anonymous_id="gone-phone") is None
    assert [e.anonymous_id for e in engine.log.read_after(0, 10)] == ["kept-browser"] * 2
    assert engine.worker.offset == 4  # the dropped events' offsets were passed too
    assert len(engine.timeline(user_id="kept")) == 2
