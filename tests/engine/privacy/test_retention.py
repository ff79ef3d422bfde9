"""Retention: old raw events leave the log once applied; the identity graph and the stitched
timeline stay; refused events age out too; the setting comes from bond.toml or the env."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bond import config as config_module
from bond.config import Config
from bond.errors import ConfigError
from bond.storage.eventlog import NewEvent, RejectedEvent, SqliteEventLog
from engine.privacy import audit
from engine.privacy.retention import DAY_MS, Retention, old_through
from engine.worker import Worker, open_state
from tests.engine.harness import Engine


def test_only_applied_events_past_retention_leave_the_log(data_dir: Path) -> None:
    engine = Engine(data_dir, batch_size=3)
    now = int(time.time() * 1000)
    old, recent = now - 40 * DAY_MS, now - 1 * DAY_MS
    engine.track("laptop", old)
    engine.identify("laptop", old + 1, user="u1", email="kept@example.com")
    engine.track("laptop", old + 2)
    engine.track("laptop", old + 3)  # old, but not applied when retention runs
    engine.track("laptop", recent)
    engine.log.append([], [RejectedEvent("default", old, "bad", b"{}")])
    engine.worker.run_once()
    retention = Retention(30)

    deleted = retention.run(engine.worker.conn, engine.log, engine.worker.offset)

    assert deleted == 3
    assert [e.timestamp for e in engine.log.read_after(0, 10)] == [old + 3, recent]
    assert engine.log.rejected_count() == 0
    engine.run()
    person = engine.person(email="kept@example.com")
    assert person["event_count"] == 5
    assert len(engine.timeline(user_id="u1")) == 5  # the timeline keeps what it shows
    assert audit.entries(engine.worker.conn)[0]["counts"] == {
        "log_events": 3,
        "rejected_events": 1,
    }
    assert not retention.due()  # next run a minute later
    engine.close()


def test_retention_days_comes_from_bond_toml_or_the_environment(
    data_dir: Path, tmp_path: Path
) -> None:
    toml = tmp_path / "bond.toml"
    toml.write_text("[engine]\nretention_days = 30\n")
    assert config_module.load(toml, env={}).engine.retention_days == 30
    config = config_module.load(toml, env={"BOND_RETENTION_DAYS": "7"}, data_dir=data_dir)
    worker = Worker(config)
    assert worker.retention.days == 7 and worker.retention.due()
    worker.close()
    with pytest.raises(ConfigError, match="whole number of days"):
        config_module.load(toml, env={"BOND_RETENTION_DAYS": "a month"})
    toml.write_text("[engine]\nretention_days = -1\n")
    with pytest.raises(ConfigError, match="cannot be negative"):
        config_module.load(toml, env={})
    toml.write_text("")
    assert config_module.load(toml, env={}).engine.retention_days == 0
    assert not Retention(0).due()


def _fill(log: SqliteEventLog, received: list[int]) -> None:
    events = [
        NewEvent("default", f"m-{i}", "page", "laptop", None, None, at, at, None, None, b"{}")
        for i, at in enumerate(received)
    ]
    for start in range(0, len(events), 500):
        log.append(events[start : start + 500], [])


def _steps_of_a_run(data_dir: Path, recent: int) -> tuple[int, int]:
    """(events deleted, SQLite VM steps on the log's connection, in hundreds) for one run over
    20 old events followed by `recent` events not yet past retention, all applied."""
    log = SqliteEventLog(data_dir / "events.db")
    now = int(time.time() * 1000)
    _fill(log, [now - 40 * DAY_MS + i for i in range(20)] + [now] * recent)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    # The delete holds the log's write lock while it looks: the collector waits that long.
    log._conn.set_progress_handler(count, 100)
    state = open_state(Config(data_dir=data_dir))
    deleted = Retention(30).run(state, log, log.head())
    log._conn.set_progress_handler(None, 0)
    assert log.head() == 20 + recent
    log.close()
    state.close()
    return deleted, steps[0]


def test_a_run_looks_only_at_the_old_events_not_the_whole_log(tmp_path: Path) -> None:
    small = _steps_of_a_run(tmp_path / "small", 1_000)
    large = _steps_of_a_run(tmp_path / "large", 20_000)
    assert small[0] == large[0] == 20
    # Twenty times the recent events: a few more probes of the search, not a scan of them all.
    assert large[1] < 2 * small[1]


def test_the_old_events_end_where_receipt_time_reaches_the_cutoff(data_dir: Path) -> None:
    log = SqliteEventLog(data_dir / "events.db")
    _fill(log, [10, 20, 30, 40, 50, 60])
    log.delete_seqs([2, 5])  # gaps, as erasures and suppression leave them
    assert [old_through(log, cutoff, 6) for cutoff in (5, 11, 31, 41, 51, 61)] == [
        0,
        1,
        3,
        4,
        4,
        6,
    ]
    assert old_through(log, 61, 3) == 3  # never past what the worker applied
    assert old_through(log, 61, 0) == 0
    log.close()
