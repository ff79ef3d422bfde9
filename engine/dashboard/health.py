"""Health: is Bond keeping up? Ingest rate, the collector's counts, worker lag, outbox depth.

A sample is taken at most once a second, however many dashboards are watching, and the last
few minutes are kept so a chart has a past as soon as a page opens. The ingest rate comes from
the event log's head (what was committed, whoever wrote it); the accepted, rejected and
deduplicated counts only live in the collector process, so they are read from its /metrics over
HTTP and are None ("unknown") while it cannot be reached.

Lag alone cannot tell a worker that is catching up from one that has stopped: the age of the
oldest event waiting to be applied, and how long the worker's offset has stood still, can.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

from engine.dashboard.alerts import pending
from engine.dashboard.live import LogTail
from engine.timeline import IdentityReader

SAMPLE_EVERY_S = 1.0
HISTORY = 300  # five minutes of one-second samples
SCRAPE_TIMEOUT_S = 0.5
# The worker applies an event within milliseconds of its commit; an event waiting this long
# means it is far behind, or (with its offset standing still as long) stopped.
STALL_S = 10.0

COUNTERS = {
    "bond_events_accepted_total": "accepted",
    "bond_events_rejected_total": "rejected",
    "bond_events_deduplicated_total": "deduplicated",
    "bond_writer_queue_events": "queue",
}


def parse_metrics(text: str) -> dict[str, float]:
    """Sum the collector's series we chart over their labels (rejected counts are by reason)."""
    totals = dict.fromkeys(COUNTERS.values(), 0.0)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.split("{", 1)[0]
        if name in COUNTERS:
            try:
                totals[COUNTERS[name]] += float(value)
            except ValueError:
                continue
    return totals


def scrape(url: str) -> dict[str, float] | None:
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
            return parse_metrics(response.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def backlog(tail: LogTail, offset: int, now_ms: int) -> dict[str, Any]:
    """What the worker has not applied yet: how many events, and how long the oldest of them
    has waited since the collector received it (None when nothing waits)."""
    head = tail.head()
    oldest = tail.after(offset, 1) if head > offset else []
    waited = max(now_ms - oldest[0].received_at, 0) / 1000 if oldest else None
    return {
        "log_head": head,
        "lag": max(head - offset, 0),
        "waiting_s": None if waited is None else round(waited, 1),
    }


def worker_state(waiting_s: float | None, still_s: float) -> str:
    """`ok`, `behind` (events wait for long) or `stopped` (and the offset has not moved)."""
    if waiting_s is None or waiting_s < STALL_S:
        return "ok"
    return "stopped" if still_s >= STALL_S else "behind"


class Health:
    def __init__(
        self,
        tail: LogTail,
        reader: Callable[[], IdentityReader],
        metrics_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.tail = tail
        self.reader = reader
        self.metrics_url = metrics_url
        self.clock = clock
        self.wall = wall
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._taken_at: float | None = None
        # The worker's offset and since when (self.clock) it has stood at it.
        self._still: tuple[int, float] | None = None
        self._lock = asyncio.Lock()

    async def sample(self) -> dict[str, Any]:
        """The newest sample, taken now unless one was taken less than a second ago."""
        async with self._lock:
            now = self.clock()
            if self._taken_at is None or now - self._taken_at >= SAMPLE_EVERY_S:
                collector = await asyncio.to_thread(scrape, self.metrics_url)
                self.history.append(self._measure(now, collector))
                self._taken_at = now
            return self.history[-1]

    def _measure(self, now: float, collector: dict[str, float] | None) -> dict[str, Any]:
        reader = self.reader()
        offset = int(reader.status()["offset"])
        at = int(self.wall() * 1000)
        waiting = backlog(self.tail, offset, at)
        previous = self.history[-1] if self.history else None
        rate = None
        if previous is not None and self._taken_at is not None:
            rate = max(waiting["log_head"] - previous["log_head"], 0) / max(
                now - self._taken_at, 1e-3
            )
        if self._still is None or self._still[0] != offset:
            self._still = (offset, now)
        return {
            "at": at,
            **waiting,
            "offset": offset,
            "worker": worker_state(waiting["waiting_s"], now - self._still[1]),
            "ingest_rate": None if rate is None else round(rate, 1),
            "outbox_pending": pending(reader),
            "collector": collector,
        }
