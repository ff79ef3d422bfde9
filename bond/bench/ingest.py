"""`bond bench ingest`: the collector's throughput and latency beside a trivial endpoint.

Three measurements in one run, one after the other on the same machine: (c) a Starlette endpoint
that parses JSON and answers 204 — the ceiling for one Python worker —, (a) the collector with
single-event requests and (b) with 100-event batches, both acknowledged only after a durable
commit. Ratios against (c) mean something on a shared, noisy machine; absolute numbers less so.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bond.bench.loadgen import LoadResult, run_load
from bond.bench.processes import free_port, running
from bond.errors import BondError

WRITE_KEY = "bench-write-key"
BATCH_SIZE = 100
TARGETS = {"single_vs_trivial": 0.8, "batch_events_per_s": 100_000, "p99_ms": 20.0}

_CONTEXT = orjson.dumps(
    {
        "page": {"path": "/products/42", "url": "https://shop.example/products/42", "title": "Mug"},
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126 Safari/537.36",
        "timezone": "Europe/Paris",
        "library": {"name": "bond.js", "version": "1.0.0"},
    }
)


class Bodies:
    """Request bodies numbered n, with timestamps from the start of the run.

    A fixed date would drift into the future or the distant past against the machine's clock,
    and the collector would then measure its clamping and warning paths instead of clean ingest.
    """

    def __init__(self, now: datetime) -> None:
        self.happened = _iso(now - timedelta(seconds=1))
        self.sent = _iso(now)

    def event(self, n: int) -> bytes:
        return (
            b'{"type":"track","event":"Product Viewed","anonymousId":"anon-%d","messageId":"m-%d",'
            b'"timestamp":"%s","properties":{"sku":"SKU-42","price":19.99},"context":%s}'
            % (n % 5000, n, self.happened, _CONTEXT)
        )

    def single(self, n: int) -> bytes:
        return b'{"writeKey":"%s",%s' % (WRITE_KEY.encode(), self.event(n)[1:])

    def batch(self, n: int) -> bytes:
        events = b",".join(self.event(n * BATCH_SIZE + i) for i in range(BATCH_SIZE))
        return b'{"writeKey":"%s","sentAt":"%s","batch":[%s]}' % (
            WRITE_KEY.encode(),
            self.sent,
            events,
        )


def _iso(moment: datetime) -> bytes:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


@dataclass
class Row:
    name: str
    result: LoadResult
    events_per_request: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests_per_s": round(self.result.rate, 1),
            "events_per_s": round(self.result.rate * self.events_per_request, 1),
            "p50_ms": round(self.result.percentile(50) * 1000, 2),
            "p99_ms": round(self.result.percentile(99) * 1000, 2),
            "requests": self.result.requests,
            "statuses": {str(k): v for k, v in sorted(self.result.statuses.items())},
            "errors": self.result.errors,
        }


def measure(*, seconds: float, connections: int) -> dict[str, Any]:
    rows: list[Row] = []
    bodies = Bodies(datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="bond-bench-") as tmp:
        port = free_port()
        with running(
            ["bond.bench.trivial", "--port", str(port)], ready_url=f"http://127.0.0.1:{port}/"
        ):
            url = f"http://127.0.0.1:{port}"
            run_load(url, "/v1/track", bodies.single, connections=connections, seconds=1)
            load = run_load(
                url, "/v1/track", bodies.single, connections=connections, seconds=seconds
            )
            rows.append(Row("trivial", load, 1))

        port = free_port()
        collector = [
            "bond.cli",
            "--data-dir",
            str(Path(tmp) / "data"),
            "serve",
            "--port",
            str(port),
        ]
        env = {"BOND_WRITE_KEY": WRITE_KEY, "BOND_CONFIG": str(Path(tmp) / "none.toml")}
        Path(env["BOND_CONFIG"]).write_text("")
        with running(collector, ready_url=f"http://127.0.0.1:{port}/healthz", env=env):
            url = f"http://127.0.0.1:{port}"
            _check_clean(url, bodies)
            run_load(
                url,
                "/v1/track",
                lambda n: bodies.single(n + 10**9),
                connections=connections,
                seconds=1,
            )
            rows.append(
                Row(
                    "single",
                    run_load(
                        url, "/v1/track", bodies.single, connections=connections, seconds=seconds
                    ),
                    1,
                )
            )
            rows.append(
                Row(
                    "batch",
                    run_load(
                        url, "/v1/batch", bodies.batch, connections=connections, seconds=seconds
                    ),
                    BATCH_SIZE,
                )
            )

    report: dict[str, Any] = {row.name: row.as_dict() for row in rows}
    ratio = report["single"]["requests_per_s"] / max(report["trivial"]["requests_per_s"], 1e-9)
    report["single_vs_trivial"] = round(ratio, 3)
    report["connections"] = connections
    report["seconds"] = seconds
    report["targets"] = TARGETS
    report["met"] = {
        "single_vs_trivial": ratio >= TARGETS["single_vs_trivial"],
        "batch_events_per_s": report["batch"]["events_per_s"] >= TARGETS["batch_events_per_s"],
        "p99_ms": max(report["single"]["p99_ms"], report["batch"]["p99_ms"]) < TARGETS["p99_ms"],
    }
    return report


def _check_clean(url: str, bodies: Bodies) -> None:
    """Refuse to measure if the collector does anything but accept the bench's events as sent."""
    for path, body, events in (
        ("/v1/track", bodies.single(-1), 1),
        ("/v1/batch", bodies.batch(-1), BATCH_SIZE),
    ):
        answer = httpx.post(url + path, content=body).json()
        if answer != {"success": True, "accepted": events, "rejected": []}:
            raise BondError(f"the collector did not take the bench's events cleanly: {answer}")


def run(*, seconds: float, connections: int, as_json: bool) -> int:
    report = measure(seconds=seconds, connections=connections)
    if as_json:
        print(orjson.dumps(report).decode())
        return 0
    labels = {
        "trivial": "(c) trivial endpoint, 1 event",
        "single": "(a) bond, 1 event / request",
        "batch": f"(b) bond, {BATCH_SIZE} events / request",
    }
    print(f"{'scenario':<34}{'req/s':>10}{'events/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for name, label in labels.items():
        row = report[name]
        print(
            f"{label:<34}{row['requests_per_s']:>10,.0f}{row['events_per_s']:>12,.0f}"
            f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
        )
    print(
        f"\nsingle / trivial: {report['single_vs_trivial']:.2f}x (target >= 0.8)   "
        f"{connections} connections, {seconds:g}s each, durable acks"
    )
    return 0
