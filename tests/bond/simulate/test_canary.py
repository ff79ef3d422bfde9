"""A small `bond simulate` through the real collector and worker, as users run it."""

from __future__ import annotations

from tests.bond.simulate.support import simulate_json


def test_bond_simulate_drives_the_real_collector_and_worker() -> None:
    report = simulate_json("--households", "8", "--seed", "3")
    assert report["events"] > 0 and report["ingest"]["requests"] >= 1
    assert report["stitch_latency_ms"]["batches"] >= 1
    assert report["worker_cpu_s"] > 0 and report["worker_events_per_cpu_s"] > 0
    quality = report["quality"]
    # Every conversion made it through HTTP, the identity graph and the household hook.
    assert quality["conversions_scored"] > 0
    assert quality["overall"]["accuracy"] >= quality["overall"]["random_accuracy"]
    assert {"ari", "member_count", "reliability", "cold_start", "drift"} <= set(quality)
