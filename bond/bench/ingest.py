"""`bond bench ingest`: the collector's throughput and latency beside a trivial endpoint.

Four measurements in one run on the same machine, in interleaved rounds: (c) a Starlette
endpoint that parses JSON and answers 204 — the ceiling for one Python worker —, (a) the
collector with single-event requests and (b) with 100-event batches, both acknowledged only
after a durable commit, and (d) the same events inserted bare into SQLite — the ceiling for
storing them (see storage_ceiling.py). Ratios against (c) and (d) mean something on a shared,
noisy machine; absolute numbers less so.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson

from bond.bench.history import fill
from bond.bench.loadgen import BodyMaker, LoadResult, run_load
from bond.bench.processes import children_of, cpu_seconds, free_port, running
from bond.bench.storage_ceiling import Round, Row, StorageCeiling, row
from bond.errors import BondError
from engine.dashboard.health import parse_metrics

WRITE_KEY = "bench-write-key"
BATCH_SIZE = 100
ROUNDS = 5
# Latency in a closed loop is in-flight events / rate: 64 connections of 100-event batches keep
# 6,400 events in flight, 64 ms at 100,000 events/s before any work. Batches are measured at a
# concurrency where a p99 under 20 ms is possible at the target rate.
BATCH_CONNECTIONS = 8
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
    Single events and batches number their messageIds apart ("s-n", "b-n"), so that neither
    sends an event the other stored: a duplicate costs the collector no write at all.
    """

    def __init__(self, now: datetime) -> None:
        self.happened = _iso(now - timedelta(seconds=1))
        self.sent = _iso(now)
        self.now_ms = int(now.timestamp() * 1000)

    def event(self, kind: bytes, n: int) -> bytes:
        return (
            b'{"type":"track","event":"Product Viewed","anonymousId":"anon-%d","messageId":"%s-%d",'
            b'"timestamp":"%s","properties":{"sku":"SKU-42","price":19.99},"context":%s}'
            % (n % 5000, kind, n, self.happened, _CONTEXT)
        )

    def single(self, n: int) -> bytes:
        return b'{"writeKey":"%s",%s' % (WRITE_KEY.encode(), self.event(b"s", n)[1:])

    def batch(self, n: int) -> bytes:
        events = b",".join(self.event(b"b", n * BATCH_SIZE + i) for i in range(BATCH_SIZE))
        return b'{"writeKey":"%s","sentAt":"%s","batch":[%s]}' % (
            WRITE_KEY.encode(),
            self.sent,
            events,
        )

    def row(self, n: int) -> Row:
        """A batch event as the storage ceiling stores it, numbered apart from the others."""
        return row("default", f"d-{n}", f"anon-{n % 5000}", self.event(b"d", n), self.now_ms)


def _iso(moment: datetime) -> bytes:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


@dataclass
class Scenario:
    """One load shape, measured in several rounds interleaved with the others."""

    name: str
    path: str
    body: BodyMaker
    connections: int
    events_per_request: int
    rounds: list[LoadResult] = field(default_factory=list)
    numbered: int = 0  # bodies made so far: each round goes on where the last one stopped
    # The server processes whose CPU this scenario's rounds are charged with, by name, and
    # what they used: where the ceiling is (a process near one core is the bottleneck).
    watched: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def run(self, url: str, seconds: float) -> None:
        first = self.numbered
        before = {name: cpu_seconds(pid) for name, pid in self.watched.items()}
        started = time.perf_counter()
        result = run_load(
            url,
            self.path,
            lambda n: self.body(first + n),
            connections=self.connections,
            seconds=seconds,
        )
        self.wall_s += time.perf_counter() - started
        for name, pid in self.watched.items():
            start, end = before[name], cpu_seconds(pid)
            if start is not None and end is not None:
                self.cpu_s[name] = self.cpu_s.get(name, 0.0) + end - start
        self.numbered += result.requests + result.errors
        self.rounds.append(result)

    @property
    def rates(self) -> list[float]:
        return [result.rate for result in self.rounds]

    def as_dict(self) -> dict[str, Any]:
        latencies = sorted(t for result in self.rounds for t in result.latencies)
        statuses: dict[str, int] = {}
        for result in self.rounds:
            for status, count in result.statuses.items():
                statuses[str(status)] = statuses.get(str(status), 0) + count
        rate = statistics.median(self.rates)
        return {
            "requests_per_s": round(rate, 1),
            "events_per_s": round(rate * self.events_per_request, 1),
            "p50_ms": round(_percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(_percentile(latencies, 99) * 1000, 2),
            "connections": self.connections,
            "rounds_requests_per_s": [round(r, 1) for r in self.rates],
            "requests": sum(result.requests for result in self.rounds),
            "statuses": statuses,
            "errors": sum(result.errors for result in self.rounds),
            "cpu": self._cpu(),
        }

    def _cpu(self) -> dict[str, dict[str, float]]:
        events = sum(result.requests for result in self.rounds) * self.events_per_request
        return {
            name: {
                "cores": round(seconds / self.wall_s, 2) if self.wall_s else 0.0,
                "us_per_event": round(seconds * 1e6 / events, 1) if events else 0.0,
            }
            for name, seconds in self.cpu_s.items()
        }


def _percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class Servers(NamedTuple):
    trivial_url: str
    collector_url: str
    # The processes each one's CPU is read from, by name: the server's and this one's, the
    # load generator, on the same cores.
    trivial_processes: dict[str, int]
    bond_processes: dict[str, int]
    tmp: Path  # removed with the servers


@contextmanager
def servers(bodies: Bodies, history: int) -> Iterator[Servers]:
    """The trivial endpoint, and a collector on a log of `history` events that takes the
    bench's events cleanly."""
    with tempfile.TemporaryDirectory(prefix="bond-bench-") as tmp:
        trivial_port, collector_port = free_port(), free_port()
        config = Path(tmp) / "none.toml"
        config.write_text("")
        fill(Path(tmp) / "data" / "events.db", history)
        collector = ["bond.cli", "--data-dir", str(Path(tmp) / "data"), "serve"]
        with (
            running(
                ["bond.bench.trivial", "--port", str(trivial_port)],
                ready_url=f"http://127.0.0.1:{trivial_port}/",
            ) as trivial_server,
            running(
                [*collector, "--port", str(collector_port)],
                ready_url=f"http://127.0.0.1:{collector_port}/healthz",
                env={"BOND_WRITE_KEY": WRITE_KEY, "BOND_CONFIG": str(config)},
            ) as collector_server,
        ):
            bond = {"collector": collector_server.pid}
            # Its only child, started before /healthz answers.
            for commit_process in children_of(collector_server.pid)[:1]:
                bond["commit_process"] = commit_process
            collector_url = f"http://127.0.0.1:{collector_port}"
            _check_clean(collector_url, bodies)
            load_generator = {"load_generator": os.getpid()}
            yield Servers(
                f"http://127.0.0.1:{trivial_port}",
                collector_url,
                {"server": trivial_server.pid, **load_generator},
                {**bond, **load_generator},
                Path(tmp),
            )


def measure(*, seconds: float, connections: int, history: int) -> dict[str, Any]:
    """Each scenario for `seconds` in all, in ROUNDS rounds that alternate between them.

    The machine is shared: load from elsewhere comes and goes over seconds, and would land on
    whichever scenario ran then. Interleaved short rounds spread it over all three, and the
    ratio is the median of the ratios between a round's single events and its trivial
    endpoint, measured seconds apart. The collector starts on a log that already holds
    `history` events (see history.py).
    """
    bodies = Bodies(datetime.now(UTC))
    trivial = Scenario("trivial", "/v1/track", bodies.single, connections, 1)
    single = Scenario("single", "/v1/track", bodies.single, connections, 1)
    batch = Scenario("batch", "/v1/batch", bodies.batch, BATCH_CONNECTIONS, BATCH_SIZE)
    storage: list[Round] = []
    with servers(bodies, history) as up:
        trivial_url, collector_url = up.trivial_url, up.collector_url
        trivial.watched = up.trivial_processes
        single.watched = batch.watched = up.bond_processes
        # Each shape is warmed up once, apart from the ids the rounds send: a server's first
        # second of batches also grows its WAL file from nothing, which it does only once.
        for url, path, warm_up, warm_connections in (
            (trivial_url, "/v1/track", bodies.single, connections),
            (collector_url, "/v1/track", lambda n: bodies.single(n + 10**9), connections),
            (collector_url, "/v1/batch", lambda n: bodies.batch(n + 10**8), BATCH_CONNECTIONS),
        ):
            run_load(url, path, warm_up, connections=warm_connections, seconds=1)
        # Groups as large as the batches in flight: the cheapest commits the collector makes.
        with closing(
            StorageCeiling(
                up.tmp / "ceiling.db",
                bodies.row,
                group=BATCH_CONNECTIONS * BATCH_SIZE,
            )
        ) as ceiling:
            ceiling.run(seconds=1)
            for _ in range(ROUNDS):
                trivial.run(trivial_url, seconds / ROUNDS)
                single.run(collector_url, seconds / ROUNDS)
                batch.run(collector_url, seconds / ROUNDS)
                storage.append(ceiling.run(seconds / ROUNDS))
        stored = check_stored(collector_url)

    report: dict[str, Any] = {s.name: s.as_dict() for s in (trivial, single, batch)}
    report["collector"] = {"history_events": history, **stored}
    # Each round's ratio too: on a shared machine their spread says how far to trust the median.
    ratios = [s / max(t, 1e-9) for s, t in zip(single.rates, trivial.rates, strict=True)]
    ratio = statistics.median(ratios)
    report["single_vs_trivial"] = round(ratio, 3)
    report["single_vs_trivial_rounds"] = [round(r, 3) for r in ratios]
    report["storage"] = _storage(storage)
    bare_ratios = [
        b * BATCH_SIZE / max(d.rate, 1e-9) for b, d in zip(batch.rates, storage, strict=True)
    ]
    report["batch_vs_storage"] = round(statistics.median(bare_ratios), 3)
    report["batch_vs_storage_rounds"] = [round(r, 3) for r in bare_ratios]
    report["connections"] = connections
    report["seconds"] = seconds
    report["rounds"] = ROUNDS
    report["targets"] = TARGETS
    report["met"] = {
        "single_vs_trivial": ratio >= TARGETS["single_vs_trivial"],
        "batch_events_per_s": report["batch"]["events_per_s"] >= TARGETS["batch_events_per_s"],
        "p99_ms": max(report["single"]["p99_ms"], report["batch"]["p99_ms"]) < TARGETS["p99_ms"],
    }
    return report


def _storage(rounds: list[Round]) -> dict[str, Any]:
    events = sum(r.events for r in rounds)
    wall = sum(r.wall_s for r in rounds)
    cpu = sum(r.cpu_s for r in rounds)
    return {
        "events_per_s": round(statistics.median(r.rate for r in rounds), 1),
        "events_per_commit": BATCH_CONNECTIONS * BATCH_SIZE,
        "rounds_events_per_s": [round(r.rate, 1) for r in rounds],
        "cpu": {
            "sqlite_insert": {
                "cores": round(cpu / wall, 2) if wall else 0.0,
                "us_per_event": round(cpu * 1e6 / events, 1) if events else 0.0,
            }
        },
    }


def _check_clean(url: str, bodies: Bodies) -> None:
    """Refuse to measure if the collector does anything but accept the bench's events as sent."""
    for path, body, events in (
        ("/v1/track", bodies.single(-1), 1),
        ("/v1/batch", bodies.batch(-1), BATCH_SIZE),
    ):
        answer = httpx.post(url + path, content=body).json()
        if answer != {"success": True, "accepted": events, "rejected": []}:
            raise BondError(f"the collector did not take the bench's events cleanly: {answer}")


def check_stored(url: str) -> dict[str, int]:
    """What the collector stored, from its metrics; refuses a run that sent an event twice.

    A duplicate is answered 2xx like any event but costs no write, so a bench that sent
    events again would report deduplication as ingest.
    """
    totals = parse_metrics(httpx.get(url + "/metrics").text)
    counts = {
        "events_accepted": int(totals["accepted"]),
        "events_deduplicated": int(totals["deduplicated"]),
    }
    if counts["events_deduplicated"]:
        raise BondError(
            f"the bench sent {counts['events_deduplicated']} events the collector already had; "
            "its numbers would measure deduplication, not ingest"
        )
    return counts


def run(*, seconds: float, connections: int, history: int, as_json: bool) -> int:
    report = measure(seconds=seconds, connections=connections, history=history)
    if as_json:
        print(orjson.dumps(report).decode())
    else:
        print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    """`report` as the tables and the two ratios' lines `bond bench ingest` prints."""
    connections, seconds = report["connections"], report["seconds"]
    history = report["collector"]["history_events"]
    labels = {
        "trivial": "(c) trivial endpoint, 1 event",
        "single": "(a) bond, 1 event / request",
        "batch": f"(b) bond, {BATCH_SIZE} events / request",
    }
    storage = report["storage"]
    storage_label = f"(d) bare SQLite, {storage['events_per_commit']} / commit"
    print(f"{'scenario':<34}{'req/s':>10}{'events/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for name, label in labels.items():
        line = report[name]
        print(
            f"{label:<34}{line['requests_per_s']:>10,.0f}{line['events_per_s']:>12,.0f}"
            f"{line['p50_ms']:>9.2f}{line['p99_ms']:>9.2f}"
        )
    print(f"{storage_label:<34}{'-':>10}{storage['events_per_s']:>12,.0f}{'-':>9}{'-':>9}")
    print(f"\n{'CPU while measured':<34}{'process':<16}{'cores':>7}{'us/event':>10}")
    for label, cpu in [
        *((label, report[name]["cpu"]) for name, label in labels.items()),
        (storage_label, storage["cpu"]),
    ]:
        for process, used in cpu.items():
            print(
                f"{label:<34}{process.replace('_', ' '):<16}{used['cores']:>7.2f}"
                f"{used['us_per_event']:>10.1f}"
            )
            label = ""
    singles, batches = report["single_vs_trivial_rounds"], report["batch_vs_storage_rounds"]
    print(
        f"\nsingle / trivial: {report['single_vs_trivial']:.2f}x at {connections} connections "
        f"each, median of {ROUNDS} interleaved rounds ({min(singles):.2f}-{max(singles):.2f}); "
        f"{BATCH_CONNECTIONS} connections for batches, {seconds:g}s per scenario, durable acks, "
        f"{history:,} events stored before"
    )
    # A closed loop holds as many requests as connections, and the collector holds each until
    # its commit: at equal connections it runs out of requests before the trivial endpoint does.
    print(
        f"  the target ({TARGETS['single_vs_trivial']}x) compares each server's best rate: "
        "bond bench concurrency"
    )
    target = TARGETS["batch_events_per_s"]
    beyond = (
        f"; the target of {target:,} is above what bare inserts reach on this machine"
        if storage["events_per_s"] < target
        else ""
    )
    print(
        f"batches / bare SQLite: {report['batch_vs_storage']:.2f}x, median of {ROUNDS} rounds "
        f"({min(batches):.2f}-{max(batches):.2f}){beyond}"
    )
