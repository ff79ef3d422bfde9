"""`bond bench ingest` measures ingest: real servers, every event it sends new to the collector."""

from __future__ import annotations

from bond.bench.ingest import BATCH_SIZE, measure


def test_every_round_sends_events_the_collector_has_not_seen() -> None:
    # Rounds used to number their bodies from 1 again, so all but the first sent the same
    # messageIds: answered 2xx, stored never, and measured as if they were ingest.
    report = measure(seconds=0.5, connections=4)
    stored = report["collector"]
    assert stored["events_deduplicated"] == 0
    sent = report["single"]["requests"] + report["batch"]["requests"] * BATCH_SIZE
    assert stored["events_accepted"] >= sent > 0
    assert set(report["single"]["statuses"]) == {"200"}
    assert set(report["batch"]["statuses"]) == {"200"}
    assert set(report["trivial"]["statuses"]) == {"204"}
    assert report["single_vs_trivial"] > 0
