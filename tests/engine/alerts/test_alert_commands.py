"""`bond alerts test|send|list` and the read API's /api/alerts, against a fake Discord."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from alert_support import AlertEngine, fake_discord

from bond.cli import main
from bond.config import AlertRule, load
from bond.errors import StorageError
from conftest import ADMIN_TOKEN, captured_logs
from engine.alerts.fake_discord import FakeDiscord
from engine.api import create_read_app
from engine.privacy.lock import WorkerLock
from engine.worker import run_worker
from tests.engine.test_api import AppClient


@pytest.fixture
def discord(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDiscord]:
    with fake_discord() as fake:
        monkeypatch.setenv("BOND_DISCORD_WEBHOOK_URL", fake.url)
        yield fake


def an_alert(data_dir: Path) -> None:
    engine = AlertEngine(data_dir, AlertRule(name="anyone", kind="identified"))
    engine.send("identify", ts=1_000, traits={"email": "dee@example.com"})
    engine.apply()
    engine.close()


def a_failed_alert(data_dir: Path, discord: FakeDiscord) -> None:
    """An alert whose delivery Discord refused (until a --retry-failed)."""
    an_alert(data_dir)
    discord.then("404")
    assert main(["--data-dir", str(data_dir), "alerts", "send"]) == 0
    assert discord.delivered == []


def test_alerts_test_sends_a_sample_and_says_whether_it_worked(
    discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "test"]) == 0
    [request] = discord.delivered
    assert request.body["embeds"][0]["title"] == "Bond alerts are connected"
    discord.then("404")
    assert main(["alerts", "test"]) == 1
    out = capsys.readouterr().out
    assert "the webhook works" in out
    assert "Discord answered 404: Unknown Webhook" in out
    assert "s3cret-token" not in out


def test_alerts_send_retries_failed_alerts_once_the_webhook_is_fixed(
    tmp_path: Path, discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "bond-data"
    a_failed_alert(data_dir, discord)
    assert main(["--data-dir", str(data_dir), "alerts", "send", "--retry-failed"]) == 0
    assert len(discord.delivered) == 1
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "alerts", "list", "--json"]) == 0
    [listed] = orjson.loads(capsys.readouterr().out)["alerts"]
    assert (listed["state"], listed["summary"]) == ("sent", "dee@example.com identified")


def test_beside_a_running_worker_failed_alerts_are_left_to_its_sender(
    tmp_path: Path, discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "bond-data"
    a_failed_alert(data_dir, discord)
    worker = WorkerLock(data_dir)  # what a running bond worker holds
    assert worker.acquire()
    try:
        # A second sender beside the worker's would take the same rows: each sent twice.
        assert main(["--data-dir", str(data_dir), "alerts", "send", "--retry-failed"]) == 0
        assert discord.delivered == []
        assert "its sender delivers them" in capsys.readouterr().out
        # A worker refused for the lock starts no sender either (one that did could deliver
        # before it noticed, and during a wait Discord asked the real worker's sender for).
        config = load(None, env={**os.environ, "BOND_DATA_DIR": str(data_dir)})
        with captured_logs() as logs, pytest.raises(StorageError, match="another bond worker"):
            run_worker(config)
        assert logs.records("alert_sender_started") == []
        assert discord.delivered == []
    finally:
        worker.release()
    assert main(["--data-dir", str(data_dir), "alerts", "send"]) == 0
    assert len(discord.delivered) == 1


def test_the_read_api_lists_recent_alerts_with_their_delivery_state(tmp_path: Path) -> None:
    data_dir = tmp_path / "bond-data"
    engine = AlertEngine(data_dir)
    config = replace(engine.config, admin_token=ADMIN_TOKEN)
    engine.close()
    client = AppClient(create_read_app(config))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/api/alerts", headers=auth).json() == {"alerts": [], "next": None}
    an_alert(data_dir)
    [alert] = client.get("/api/alerts", headers=auth).json()["alerts"]
    assert (alert["rule"], alert["state"], alert["attempts"]) == ("anyone", "pending", 0)
    assert client.get("/api/alerts").status_code == 401


def test_the_read_api_pages_alerts_newest_first_by_id(tmp_path: Path) -> None:
    data_dir = tmp_path / "bond-data"
    engine = AlertEngine(data_dir, AlertRule(name="anyone", kind="identified"))
    for n in range(5):
        engine.send("identify", anon=f"browser-{n}", ts=1_000 + n, traits={"email": f"p{n}@x.io"})
    engine.apply()
    config = replace(engine.config, admin_token=ADMIN_TOKEN)
    engine.close()
    client = AppClient(create_read_app(config))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    pages, before = [], ""
    while before is not None:
        page = client.get(f"/api/alerts?limit=2&before={before}", headers=auth).json()
        pages.append([alert["summary"] for alert in page["alerts"]])
        before = page["next"]
    # The last full page says there is nothing after it rather than lead to an empty one.
    assert pages == [
        ["p4@x.io identified", "p3@x.io identified"],
        ["p2@x.io identified", "p1@x.io identified"],
        ["p0@x.io identified"],
    ]
    answer = client.get("/api/alerts?before=soon", headers=auth)
    assert answer.status_code == 400 and "before must be an id" in answer.json()["reason"]


def test_alerts_test_on_a_429_says_how_long_discord_asks_to_wait(
    discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    discord.then("429", "429-via")
    assert main(["alerts", "test"]) == 1
    assert main(["alerts", "test"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    for line in out:
        assert "rate limited" in line
        assert "Discord asks to wait 0.05 s before trying again" in line


@pytest.mark.parametrize("action", [["list"], ["send"], ["test"]])
def test_every_alerts_command_refuses_a_rule_the_worker_would_refuse(
    tmp_path: Path,
    discord: FakeDiscord,
    capsys: pytest.CaptureFixture[str],
    action: list[str],
) -> None:
    data_dir = tmp_path / "bond-data"
    an_alert(data_dir)
    config = tmp_path / "bond.toml"
    config.write_text(
        '[[alerts.rules]]\nname = "big"\nkind = "event"\nevent = "Order Completed"\n'
        'where = ["value >>= 500"]\n'
    )
    args = ["--config", str(config), "--data-dir", str(data_dir), "alerts", *action]
    assert main(args) == 1
    assert "alert rule 'big'" in capsys.readouterr().err
    assert discord.requests == []


def test_alerts_list_prints_one_short_plain_line_per_alert(
    tmp_path: Path, discord: FakeDiscord, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "bond-data"
    engine = AlertEngine(data_dir, AlertRule(name="anyone", kind="identified"))
    name = "Dee\u202e" + "x" * 300 + "\x9b31m"
    engine.send("identify", ts=1_000, traits={"email": "dee@example.com", "name": name})
    engine.apply()
    engine.close()
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "alerts", "list"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    summary = line.split("anyone: ", 1)[1]
    assert len(summary) == 120
    assert summary.startswith("Dee\ufffdxxx") and summary.endswith("…")
    assert not any(c in line for c in "\u202e\x9b")
    assert main(["--data-dir", str(data_dir), "alerts", "list", "--json"]) == 0
    [listed] = orjson.loads(capsys.readouterr().out)["alerts"]
    assert len(listed["summary"]) > 300  # the whole of it, for scripts


def test_alerts_list_says_when_there_are_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "bond-data"
    AlertEngine(data_dir, AlertRule(name="anyone", kind="identified")).close()
    assert main(["--data-dir", str(data_dir), "alerts", "list"]) == 0
    assert capsys.readouterr().out == "No alerts yet: none of the rules has matched anyone.\n"
    assert main(["--data-dir", str(data_dir), "alerts", "list", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == {"alerts": []}
