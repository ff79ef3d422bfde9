"""`bond bench concurrency` walks the levels with real servers, each event new to the collector."""

from __future__ import annotations

from typing import Any

import pytest

from bond.bench.concurrency import ROUNDS, best_rates, sweep


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return sweep(seconds=0.3, history=1_000, levels=(2, 6))


def test_each_level_measures_both_servers_and_sends_every_event_once(
    report: dict[str, Any],
) -> None:
    assert [level["connections"] for level in report["levels"]] == [2, 6]
    for level in report["levels"]:
        for name, status in (("trivial", "204"), ("single", "200")):
            assert level[name]["connections"] == level["connections"]
            assert set(level[name]["statuses"]) == {status}
            assert len(level[name]["rounds_requests_per_s"]) == ROUNDS
        assert level["single_vs_trivial"] > 0
    # A level that numbered its events from 0 again would resend the last one's: stored never.
    stored = report["collector"]
    assert stored["events_deduplicated"] == 0
    sent = sum(level["single"]["requests"] for level in report["levels"])
    assert stored["events_accepted"] >= sent > 0


def test_the_best_rate_is_the_highest_median_with_its_level(report: dict[str, Any]) -> None:
    best = report["best"]
    for name in ("trivial", "single"):
        top = max(report["levels"], key=lambda level: level[name]["requests_per_s"])
        assert best[name] == {
            "requests_per_s": top[name]["requests_per_s"],
            "connections": top["connections"],
            "p99_ms": top[name]["p99_ms"],
        }
    ratio = best["single"]["requests_per_s"] / best["trivial"]["requests_per_s"]
    assert best["single_vs_trivial"] == pytest.approx(ratio, abs=1e-3)


def level(connections: int, trivial: tuple[float, float], single: tuple[float, float]) -> Any:
    return {
        "connections": connections,
        "trivial": {"requests_per_s": trivial[0], "p99_ms": trivial[1]},
        "single": {"requests_per_s": single[0], "p99_ms": single[1]},
    }


def test_the_best_under_a_p99_leaves_out_the_levels_over_it() -> None:
    levels = [
        level(8, (100, 5), (40, 9)),
        level(64, (90, 25), (80, 19)),
        level(256, (80, 70), (95, 60)),
    ]
    anywhere = best_rates(levels)
    assert (anywhere["trivial"]["connections"], anywhere["single"]["connections"]) == (8, 256)
    assert anywhere["single_vs_trivial"] == 0.95
    within = best_rates(levels, p99_ms=20)
    assert (within["trivial"]["connections"], within["single"]["connections"]) == (8, 64)
    assert within["single_vs_trivial"] == 0.8
    assert best_rates(levels, p99_ms=1) == {
        "trivial": None,
        "single": None,
        "single_vs_trivial": None,
    }
