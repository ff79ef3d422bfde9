"""`bond bench concurrency`: single events at several concurrencies, beside the trivial endpoint.

A closed loop of N connections keeps N requests in flight, so its latency is N / rate before
any work is done, and a server reaches its best rate only once enough requests are in flight to
keep it busy. The trivial endpoint answers each request at once; the collector holds each one
until its commit, so it needs more of them in flight, and every request in flight adds to both
servers' latency. `bond bench ingest` compares the two at one concurrency; this walks several,
the two servers alternating at each, and reads the single-event target both ways: each
server's best rate at any concurrency, and its best rate where the p99 stays under 20 ms.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from bond.bench.ingest import TARGETS, Bodies, Scenario, check_stored, servers
from bond.bench.loadgen import run_load

LEVELS = (8, 16, 32, 64, 128, 256)
ROUNDS = 3
_WARM_UP_CONNECTIONS = 64


def sweep(*, seconds: float, history: int, levels: Sequence[int] = LEVELS) -> dict[str, Any]:
    """Each server for `seconds` at each level, in ROUNDS rounds alternating between the two."""
    bodies = Bodies(datetime.now(UTC))
    measured: list[dict[str, Any]] = []
    with servers(bodies, history) as up:
        # Warmed up apart from the ids the levels send, as bench ingest does.
        for url, warm_up in (
            (up.trivial_url, bodies.single),
            (up.collector_url, lambda n: bodies.single(n + 10**9)),
        ):
            run_load(url, "/v1/track", warm_up, connections=_WARM_UP_CONNECTIONS, seconds=1)
        sent = 0  # single events go on numbering across levels: none is sent twice
        for connections in levels:
            trivial = Scenario("trivial", "/v1/track", bodies.single, connections, 1)
            single = Scenario("single", "/v1/track", bodies.single, connections, 1, numbered=sent)
            trivial.watched, single.watched = up.trivial_processes, up.bond_processes
            for _ in range(ROUNDS):
                trivial.run(up.trivial_url, seconds / ROUNDS)
                single.run(up.collector_url, seconds / ROUNDS)
            sent = single.numbered
            ratios = [s / max(t, 1e-9) for s, t in zip(single.rates, trivial.rates, strict=True)]
            measured.append(
                {
                    "connections": connections,
                    "trivial": trivial.as_dict(),
                    "single": single.as_dict(),
                    "single_vs_trivial": round(statistics.median(ratios), 3),
                }
            )
        stored = check_stored(up.collector_url)
    p99_ms = TARGETS["p99_ms"]
    return {
        "levels": measured,
        "best": best_rates(measured),
        "best_within_p99": best_rates(measured, p99_ms=p99_ms),
        "p99_ms": p99_ms,
        "collector": {"history_events": history, **stored},
        "seconds": seconds,
        "rounds": ROUNDS,
    }


def best_rates(levels: list[dict[str, Any]], *, p99_ms: float | None = None) -> dict[str, Any]:
    """Each server's best median rate over the levels whose p99 is under `p99_ms` (all when
    None), where it was reached, and the collector's over the trivial endpoint's."""
    found: dict[str, Any] = {}
    for name in ("trivial", "single"):
        fit = [level for level in levels if p99_ms is None or level[name]["p99_ms"] < p99_ms]
        if not fit:
            found[name] = None
            continue
        top = max(fit, key=lambda level: level[name]["requests_per_s"])
        found[name] = {
            "requests_per_s": top[name]["requests_per_s"],
            "connections": top["connections"],
            "p99_ms": top[name]["p99_ms"],
        }
    trivial, single = found["trivial"], found["single"]
    found["single_vs_trivial"] = (
        round(single["requests_per_s"] / trivial["requests_per_s"], 3)
        if trivial and single and trivial["requests_per_s"]
        else None
    )
    return found


def run(*, seconds: float, history: int, as_json: bool) -> int:
    report = sweep(seconds=seconds, history=history)
    if as_json:
        print(orjson.dumps(report).decode())
        return 0
    print(
        f"{'connections':>11}{'trivial req/s':>15}{'p99 ms':>8}{'cores':>7}"
        f"{'bond req/s':>13}{'p99 ms':>8}{'cores':>7}{'bond / trivial':>16}"
    )
    for level in report["levels"]:
        trivial, single = level["trivial"], level["single"]
        print(
            f"{level['connections']:>11}{trivial['requests_per_s']:>15,.0f}"
            f"{trivial['p99_ms']:>8.2f}{trivial['cpu']['server']['cores']:>7.2f}"
            f"{single['requests_per_s']:>13,.0f}{single['p99_ms']:>8.2f}"
            f"{single['cpu']['collector']['cores']:>7.2f}{level['single_vs_trivial']:>16.2f}"
        )
    target = TARGETS["single_vs_trivial"]
    print(f"\nbest rate:{_best(report['best'])} (target >= {target})")
    print(f"best rate with p99 < {report['p99_ms']:g} ms:{_best(report['best_within_p99'])}")
    print(
        f"single events, durable acks; {ROUNDS} alternating rounds of {seconds / ROUNDS:g}s per "
        f"server at each level; {report['collector']['history_events']:,} events stored before"
    )
    return 0


def _best(found: dict[str, Any]) -> str:
    parts = []
    for name, label in (("trivial", "trivial"), ("single", "bond")):
        top = found[name]
        parts.append(
            f"{label} at no level"
            if top is None
            else f"{label} {top['requests_per_s']:,.0f} req/s at {top['connections']} connections"
        )
    ratio = found["single_vs_trivial"]
    return " " + ", ".join(parts) + (f": {ratio:.2f}x" if ratio is not None else "")
