"""Alerts end to end through real processes: `bond serve`, `bond worker` and a fake Discord."""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alert_support import fake_discord

from conftest import WRITE_KEY, BondProcess, Collector, wait_until
from engine.alerts.fake_discord import FakeDiscord

RULES = """
[[alerts.rules]]
name = "big checkout"
kind = "identified"
threshold = 500
"""


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with fake_discord() as fake:
        yield fake


@pytest.fixture
def stack(tmp_path: Path, discord: FakeDiscord) -> Iterator[tuple[Collector, BondProcess]]:
    data_dir = tmp_path / "bond-data"
    config = tmp_path / "bond.toml"
    config.write_text(RULES)
    env = {"BOND_CONFIG": str(config), "BOND_DISCORD_WEBHOOK_URL": discord.url}
    collector = Collector(data_dir, env=env).start()
    worker = BondProcess(["worker"], data_dir, env).start()
    yield collector, worker
    worker.stop()
    collector.stop()


def checkout(collector: Collector, visitor: str) -> str:
    """A visitor adds 600 worth to the cart, then identifies; returns the identify's messageId."""
    events = [
        {
            "type": "track",
            "event": "Product Added",
            "properties": {"name": "Trail Shoe", "price": 300, "quantity": 2},
        },
        {"type": "identify", "traits": {"email": f"{visitor}@example.com", "name": "@everyone"}},
    ]
    for i, event in enumerate(events):
        body = {**event, "anonymousId": visitor, "messageId": f"{visitor}-{i}"}
        response = httpx.post(
            f"{collector.url}/v1/{event['type']}", json=body, auth=(WRITE_KEY, "")
        )
        assert response.status_code == 200, response.text
    return f"{visitor}-1"


def outbox_states(data_dir: Path) -> list[str]:
    db = data_dir / "state.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT state FROM alert_outbox ORDER BY id")]
        except sqlite3.OperationalError:
            return []


def test_a_worker_killed_after_the_commit_delivers_the_alert_once_after_restart(
    stack: tuple[Collector, BondProcess], discord: FakeDiscord
) -> None:
    collector, worker = stack
    discord.then("hang")
    checkout(collector, "visitor1")
    wait_until(lambda: outbox_states(worker.data_dir) == ["pending"], what="the outbox row")
    wait_until(lambda: discord.requests, what="the delivery attempt")
    worker.kill()
    assert discord.delivered == []
    worker.start()
    wait_until(lambda: outbox_states(worker.data_dir) == ["sent"], timeout=30, what="delivery")
    [delivered] = discord.delivered
    assert "visitor1@example.com" in delivered.body["embeds"][0]["title"]
    assert delivered.body["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in json.dumps(delivered.body, ensure_ascii=False)


def test_identify_to_webhook_latency(
    stack: tuple[Collector, BondProcess], discord: FakeDiscord
) -> None:
    """Measured, not asserted: the numbers for engine/alerts/README.md (`pytest -s` shows them)."""
    collector, _ = stack
    latencies_ms = []
    for i in range(100):
        message_id = checkout(collector, f"visitor{i}")
        wait_until(lambda n=i + 1: len(discord.delivered) == n, what=f"alert {i}")
        with sqlite3.connect(collector.data_dir / "events.db") as conn:
            (received_at,) = conn.execute(
                "SELECT received_at FROM events WHERE message_id = ?", (message_id,)
            ).fetchone()
        latencies_ms.append(discord.delivered[-1].at * 1000 - received_at)
    latencies_ms.sort()
    p50 = statistics.median(latencies_ms)
    p99 = latencies_ms[int(len(latencies_ms) * 0.99) - 1]
    print(json.dumps({"alerts": len(latencies_ms), "p50_ms": p50, "p99_ms": p99}))
    assert len(discord.delivered) == 100
