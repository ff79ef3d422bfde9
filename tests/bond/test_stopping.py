"""Stopping Bond's services as Docker and systemd do, by SIGTERM (or SIGINT at a terminal): a
graceful stop is exit status 0, after the last acknowledged events are committed, and open
dashboards do not hold it up."""

from __future__ import annotations

import signal
import sqlite3
import threading
from pathlib import Path

import httpx
import orjson
import pytest

from bond.bench.processes import free_port
from conftest import WRITE_KEY, Collector, ReadApi, wait_until
from tests.engine.dashboard.test_stream import logged_in


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_the_collector_stops_with_0_once_what_it_acknowledged_is_committed(
    collector: Collector, sig: signal.Signals
) -> None:
    acknowledged: list[str] = []

    def send() -> None:
        with httpx.Client(base_url=collector.url, timeout=10) as client:
            for n in range(1_000_000):
                ids = [f"m-{n}-{k}" for k in range(20)]
                batch = [
                    {"type": "track", "event": "E", "anonymousId": "a", "messageId": i} for i in ids
                ]
                try:
                    sent = client.post("/v1/batch", json={"writeKey": WRITE_KEY, "batch": batch})
                except httpx.HTTPError:
                    return  # the collector has stopped listening
                if sent.status_code == 200:
                    acknowledged.extend(ids)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    wait_until(lambda: len(acknowledged) >= 200, timeout=20, what="events acknowledged")
    # Before, the process died of the signal once it had drained: 143 (SIGTERM) or 130.
    code = collector.stop(sig)
    sender.join()
    assert code == 0, collector.log
    with sqlite3.connect(collector.data_dir / "events.db") as db:
        stored = {row[0] for row in db.execute("SELECT message_id FROM events")}
    assert set(acknowledged) <= stored


def test_the_read_api_stops_at_once_with_a_live_stream_open(data_dir: Path) -> None:
    # No collector on its port: the stream's health messages find none at once.
    api = ReadApi(data_dir, env={"BOND_COLLECTOR_PORT": str(free_port())}).start()
    client = logged_in(api)
    with client.stream("GET", "/dashboard/api/stream") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        code = api.stop(signal.SIGTERM)
        # Before, uvicorn cancelled the stream after its 2-second graceful timeout and the body
        # broke off; now it ends as a response does.
        for _ in lines:
            pass
    client.close()
    assert code == 0, api.log
    # Before, a plain-text "ERROR: Cancel 1 running task(s)" among the JSON lines.
    assert [orjson.loads(line)["event"] for line in api.log.splitlines()] == ["listening"]
