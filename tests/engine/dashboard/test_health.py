"""Health: the collector's counts scraped from its real /metrics, and the ingest rate, worker
lag and outbox depth measured from the databases."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from conftest import WRITE_KEY, Collector
from engine.dashboard.health import Health, parse_metrics, scrape
from engine.dashboard.live import LogTail
from tests.engine.dashboard.dashboard_support import HookedEngine, Loop


def test_the_collectors_counts_come_from_its_metrics_and_are_unknown_when_it_is_down(
    collector: Collector,
) -> None:
    batch = [
        {"type": "page", "anonymousId": "a-1", "messageId": "m-1"},
        {"type": "page", "anonymousId": "a-1", "messageId": "m-1"},
        {"type": "track", "anonymousId": "undefined", "event": "Clicked"},
    ]
    response = httpx.post(
        f"{collector.url}/v1/batch", json={"writeKey": WRITE_KEY, "batch": batch}, timeout=5
    )
    assert response.status_code == 200

    counts = scrape(f"{collector.url}/metrics")

    assert counts == {"accepted": 2, "rejected": 1, "deduplicated": 1, "queue": 0}
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert scrape(f"http://127.0.0.1:{port}/metrics") is None


def test_rejections_are_summed_over_their_reasons() -> None:
    text = (
        "# TYPE bond_events_rejected_total counter\n"
        'bond_events_rejected_total{reason="placeholder_id"} 3\n'
        'bond_events_rejected_total{reason="too_large"} 2\n'
        "bond_events_accepted_total 10\n"
        "bond_requests_total 99\n"
        "bond_events_deduplicated_total not-a-number\n"
    )
    assert parse_metrics(text) == {"accepted": 10, "rejected": 5, "deduplicated": 0, "queue": 0}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ingest_rate_is_the_logs_growth_and_lag_what_the_worker_has_not_applied(
    data_dir: Path,
) -> None:
    engine = HookedEngine(data_dir)
    clock = Clock()
    health = Health(
        LogTail(engine.config.events_db),
        lambda: engine.reader,
        "http://127.0.0.1:9/metrics",
        clock=clock,
    )

    loop = Loop()
    first = loop.run(health.sample())
    for ts in range(10):
        engine.page("laptop", ts, "/")
    engine.worker.run_once()
    for ts in range(10, 15):
        engine.page("laptop", ts, "/")
    assert loop.run(health.sample()) == first  # at most one sample a second
    clock.now += 2.0
    second = loop.run(health.sample())
    loop.close()

    assert first["ingest_rate"] is None
    assert (second["log_head"], second["offset"], second["lag"]) == (15, 10, 5)
    assert second["ingest_rate"] == 7.5
    assert second["outbox_pending"] == 0
    assert second["collector"] is None
    assert list(health.history) == [first, second]
    engine.close()


class Wall:
    """The wall clock the collector's `received_at` is compared with, in seconds."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_worker_that_stopped_is_told_apart_from_one_catching_up(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    clock, wall = Clock(), Wall(10.0)  # events below arrived at 1, 2, 3 and 5 s
    health = Health(
        LogTail(engine.config.events_db),
        lambda: engine.reader,
        "http://127.0.0.1:9/metrics",
        clock=clock,
        wall=wall,
    )
    loop = Loop()

    def sample(after_s: float) -> tuple[str, float | None, int]:
        clock.now += after_s
        wall.now += after_s
        taken = loop.run(health.sample())
        return taken["worker"], taken["waiting_s"], taken["lag"]

    for ts in (1_000, 2_000, 3_000):
        engine.page("laptop", ts, "/")
    engine.run()
    assert sample(0) == ("ok", None, 0)
    engine.page("laptop", 5_000, "/")  # and then the worker applies nothing more
    assert sample(1) == ("ok", 6.0, 1)
    assert sample(5) == ("behind", 11.0, 1)  # long in waiting; the offset moved 6 s ago
    assert sample(4) == ("stopped", 15.0, 1)  # 10 s without moving, and events wait
    engine.run()
    assert sample(1) == ("ok", None, 0)
    loop.close()
    engine.close()
