"""`bond bench ingest` measures ingest: real servers, every event it sends new to the collector."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from bond.bench.ingest import BATCH_CONNECTIONS, BATCH_SIZE, ROUNDS, measure, print_report

HISTORY = 1_000  # the collector's log is filled first (see test_history.py)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return measure(seconds=0.5, connections=4, history=HISTORY)


def test_every_round_sends_events_the_collector_has_not_seen(report: dict[str, Any]) -> None:
    # Rounds used to number their bodies from 1 again, so all but the first sent the same
    # messageIds: answered 2xx, stored never, and measured as if they were ingest.
    stored = report["collector"]
    assert stored["history_events"] == HISTORY
    assert stored["events_deduplicated"] == 0
    sent = report["single"]["requests"] + report["batch"]["requests"] * BATCH_SIZE
    assert stored["events_accepted"] >= sent > 0
    assert set(report["single"]["statuses"]) == {"200"}
    assert set(report["batch"]["statuses"]) == {"200"}
    assert set(report["trivial"]["statuses"]) == {"204"}
    assert report["single_vs_trivial"] > 0


def test_each_rounds_ratio_is_reported_beside_their_median(report: dict[str, Any]) -> None:
    # The spread of the rounds is what tells a real change from a noisy machine.
    rounds = report["single_vs_trivial_rounds"]
    assert len(rounds) == ROUNDS
    assert all(ratio > 0 for ratio in rounds)
    assert report["single_vs_trivial"] == pytest.approx(statistics.median(rounds), abs=1e-3)


def test_batches_are_measured_against_bare_inserts(report: dict[str, Any]) -> None:
    # The batch target is an absolute rate; on a slow machine the disk and SQLite alone may
    # not reach it, and only a same-run ceiling says so.
    storage = report["storage"]
    assert storage["events_per_commit"] == BATCH_CONNECTIONS * BATCH_SIZE
    assert len(storage["rounds_events_per_s"]) == ROUNDS
    assert all(rate > 0 for rate in storage["rounds_events_per_s"])
    assert storage["events_per_s"] == pytest.approx(
        statistics.median(storage["rounds_events_per_s"]), abs=0.1
    )
    assert storage["cpu"]["sqlite_insert"]["us_per_event"] > 0
    rounds = report["batch_vs_storage_rounds"]
    assert len(rounds) == ROUNDS
    batch_rates = report["batch"]["rounds_requests_per_s"]
    for ratio, batch_rate, bare_rate in zip(
        rounds, batch_rates, storage["rounds_events_per_s"], strict=True
    ):
        # Each ratio is given to 3 decimals; the rates beside it to 1.
        assert ratio == pytest.approx(batch_rate * BATCH_SIZE / bare_rate, abs=6e-4)
    assert report["batch_vs_storage"] == pytest.approx(statistics.median(rounds), abs=1e-3)


def test_the_cpu_of_each_process_is_reported_per_event(report: dict[str, Any]) -> None:
    # Where the ceiling is: a process near one core is the bottleneck of its scenario.
    assert set(report["trivial"]["cpu"]) == {"server", "load_generator"}
    for name in ("single", "batch"):
        cpu = report[name]["cpu"]
        assert set(cpu) == {"collector", "commit_process", "load_generator"}
        for used in cpu.values():
            assert 0 < used["cores"] < 2
            assert used["us_per_event"] > 0
    # A batch's request costs the collector once for its hundred events.
    single, batch = report["single"]["cpu"], report["batch"]["cpu"]
    assert batch["collector"]["us_per_event"] < single["collector"]["us_per_event"]


def test_the_printed_single_event_ratio_says_it_is_at_equal_connections(
    report: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Beside "(target >= 0.8)" the ratio at one concurrency read as the target's verdict; the
    # target compares each server's best rate, which bond bench concurrency measures.
    print_report(report)
    lines = capsys.readouterr().out.splitlines()
    [single] = [line for line in lines if line.startswith("single / trivial:")]
    assert f"{report['single_vs_trivial']:.2f}x at 4 connections each" in single
    assert "target" not in single
    assert lines[lines.index(single) + 1] == (
        "  the target (0.8x) compares each server's best rate: bond bench concurrency"
    )
    assert any(line.startswith("batches / bare SQLite:") for line in lines)
