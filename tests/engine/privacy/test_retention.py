"""Retention: old raw events leave the log once applied; the identity graph and the stitched
timeline stay; refused events age out too; the setting comes from bond.toml or the env."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bond import config as config_module
from bond.errors import ConfigError
from bond.storage.eventlog import RejectedEvent
from engine.privacy import audit
from engine.privacy.retention import DAY_MS, Retention
from engine.worker import Worker
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
