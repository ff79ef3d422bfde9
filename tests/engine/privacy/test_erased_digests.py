"""An erased event sent again is still a duplicate after the collector's commit process restarts:
its digest outlives its row until the runs hold it (bond/storage/dedup.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx

from conftest import wait_until
from tests.collector.test_writer import commit_process
from tests.engine.privacy.privacy_support import (
    ANN_EMAIL,
    ANN_NAME,
    BOB_EMAIL,
    SHARED_LAPTOP,
    Stack,
    found_in_tables,
    post,
    stack,
    two_people,
)


def kill_commit_process(running: Stack) -> None:
    """kill -9 of the log's writer; the collector starts another, which reads its digests back."""
    first = commit_process(running.collector)
    os.kill(first, signal.SIGKILL)

    def replaced() -> bool:
        try:
            again = commit_process(running.collector)
        except AssertionError:  # between the two
            return False
        healthy = httpx.get(f"{running.collector.url}/healthz", timeout=5).status_code == 200
        return again != first and healthy

    wait_until(replaced, timeout=30, what="a new commit process")


def message_ids(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "events.db") as conn:
        return [r[0] for r in conn.execute("SELECT message_id FROM events ORDER BY seq")]


def test_an_erased_event_retried_after_the_writer_is_killed_is_not_stored_again(
    data_dir: Path,
) -> None:
    messages = two_people()
    # Anonymous, from her time on the laptop Bob shares: its anonymous id is not suppressed.
    retried = [m for m in messages if m.get("messageId") in ("m-1", "m-2")]
    assert all(m["anonymousId"] == SHARED_LAPTOP and "userId" not in m for m in retried)
    with stack(data_dir) as running:
        assert post(running.collector, messages).status_code == 200
        running.caught_up()
        bob = running.person(email=BOB_EMAIL)
        assert bob is not None
        bob_before = running.timeline(bob["id"])

        erasure = running.erase(email=ANN_EMAIL)
        assert erasure["result"]["counts"]["log_events"] == 7
        kill_commit_process(running)
        # Her browser's retry queue sends them again, exactly as before.
        assert post(running.collector, retried).status_code == 200
        running.caught_up()

        assert not {"m-1", "m-2"} & set(message_ids(data_dir))
        assert found_in_tables(data_dir, (ANN_NAME,)) == []
        assert running.timeline(bob["id"]) == bob_before
        # Bob's own events on the laptop are still duplicates when he retries them.
        assert post(running.collector, [messages[7]]).status_code == 200
        assert message_ids(data_dir).count("m-8") == 1
