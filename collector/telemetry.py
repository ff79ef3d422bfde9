"""The collector's metrics, as one object the routes and the writer update."""

from __future__ import annotations

from collections.abc import Callable

from bond.metrics import Counter, Gauge, Histogram, Registry


class CollectorMetrics:
    def __init__(self, queue_depth: Callable[[], float], writable: Callable[[], float]) -> None:
        self.registry = Registry()
        add = self.registry.add
        self.requests = add(
            Counter(
                "bond_requests_total", "HTTP requests by route and status.", ("route", "status")
            )
        )
        self.accepted = add(
            Counter(
                "bond_events_accepted_total",
                "Events acknowledged after a commit, duplicates included (stored once).",
            )
        )
        self.deduplicated = add(
            Counter(
                "bond_events_deduplicated_total",
                "Accepted events whose messageId was already stored.",
            )
        )
        self.rejected = add(
            Counter(
                "bond_events_rejected_total",
                "Events refused by validation, by reason.",
                ("reason",),
            )
        )
        self.clamped = add(
            Counter("bond_events_clamped_total", "Events whose future timestamp was clamped.")
        )
        self.suppressed = add(
            Counter(
                "bond_events_suppressed_total",
                "Events of erased persons dropped at ingest (answered as accepted).",
            )
        )
        self.identities_verified = add(
            Counter(
                "bond_identities_verified_total",
                "Accepted events whose identity claim carried a valid signature.",
            )
        )
        self.identities_rejected = add(
            Counter(
                "bond_identities_rejected_total",
                "Identity claims stripped from kept events for a missing or wrong signature, "
                "by reason.",
                ("reason",),
            )
        )
        add(Gauge("bond_writer_queue_events", "Events waiting for the writer.", queue_depth))
        add(
            Gauge(
                "bond_event_log_writable",
                "1 while the event log takes commits; 0 while it cannot be written (a full "
                "disk, its writer restarting), /healthz saying why.",
                writable,
            )
        )
        self.commit_failures = add(
            Counter(
                "bond_commit_failures_total",
                "Group commits that failed; their requests were answered 503 and nothing of "
                "them was stored.",
            )
        )
        self.writer_exits = add(
            Counter(
                "bond_writer_exits_total",
                "Times the commit process ended unasked; a new one is started each time.",
            )
        )
        self.commit_seconds = add(
            Histogram(
                "bond_commit_seconds",
                "Time to commit one group of events.",
                (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            )
        )

    def on_commit(self, events: int, duplicates: int, rejected: int, seconds: float) -> None:
        self.accepted.inc(events)
        self.deduplicated.inc(duplicates)
        self.commit_seconds.observe(seconds)
