"""A small `bond simulate` through the real collector and worker, as users run it."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

BOND = [sys.executable, "-m", "bond.cli"]


def test_bond_simulate_drives_the_real_collector_and_worker() -> None:
    result = subprocess.run(
        [*BOND, "simulate", "--households", "8", "--seed", "3", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] > 0 and report["ingest"]["requests"] >= 1
    assert report["stitch_latency_ms"]["batches"] >= 1
    assert report["worker_cpu_s"] > 0 and report["worker_events_per_cpu_s"] > 0
    quality = report["quality"]
    # Every conversion made it through HTTP, the identity graph and the household hook.
    assert quality["conversions_scored"] > 0
    assert quality["overall"]["accuracy"] >= quality["overall"]["random_accuracy"]
    assert {"ari", "member_count", "reliability", "cold_start", "drift"} <= set(quality)
