"""`bond simulate --visitors N`: the identity canary.

Simulated people (bond/simulate/visitors.py) go through a real `bond serve` and `bond worker`
over HTTP, with the machinery of the households canary (bond/simulate/canary.py). Once the
worker has applied everything and stopped, each event is joined to Bond's identity map and
scored against who really did it (bond/simulate/visitors_score.py).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bond.simulate.canary import Stack, send, wait_caught_up
from bond.simulate.report import percent, print_report
from bond.simulate.visitors import DAY_MS, LABELS, Person, Population, Scenario, Settings, generate
from bond.simulate.visitors_score import OUTCOMES, attribute, score
from engine.identity_map import snapshot
from engine.timeline import IdentityReader


def run(settings: Settings, *, as_json: bool, timeout_s: float = 600.0) -> int:
    started = time.perf_counter()
    # The simulated days end two days before now: the collector clamps future timestamps.
    now_ms = int(time.time() * 1000)
    settings = replace(settings, start_ms=now_ms - (settings.days + 2) * DAY_MS)
    population = generate(settings)
    with tempfile.TemporaryDirectory(prefix="bond-simulate-") as tmp:
        with Stack(Path(tmp)) as stack:
            sent = send(stack, (e.message for e in population.events))
            wait_caught_up(stack, timeout_s)
        # Read with the worker stopped: one state, nothing moving under the join.
        quality = read_and_score(Path(tmp) / "state.db", population)
    report = {
        "mode": "visitors",
        "visitors": len(population.people),
        "seed": settings.seed,
        "events": sent["events"],
        "ingest": {
            "events_per_s": round(sent["events"] / sent["seconds"], 1),
            "requests": sent["requests"],
        },
        "worker_catch_up_s": round(sent["catch_up_s"], 2),
        "total_s": round(time.perf_counter() - started, 1),
        "quality": quality,
    }
    print_report(report, as_json=as_json, table=lines)
    return 0


def read_and_score(state_db: Path, population: Population) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, isolation_level=None)
    try:
        with snapshot(conn) as taken:
            attributed = attribute(population.events, taken.rows)
        records = _records(IdentityReader(conn), population.people.values())
    finally:
        conn.close()
    return score(population.people, attributed, records)


def _records(reader: IdentityReader, people: Iterable[Person]) -> dict[str, set[int]]:
    """Each person's Bond persons: those holding one of their user ids or emails now."""
    out: dict[str, set[int]] = {}
    for person in people:
        found = [reader.find(user_id=u) for u in person.user_ids]
        found += [reader.find(email=e) for e in person.emails]
        out[person.name] = {
            resolved for p in found if p is not None and (resolved := reader.resolve(p)) is not None
        }
    return out


def lines(report: dict[str, Any]) -> list[str]:
    q = report["quality"]
    out = [
        f"visitors {report['visitors']}  seed {report['seed']}  events {report['events']:,} "
        f"through the collector ({report['ingest']['events_per_s']:,} events/s) and the worker "
        f"(caught up {report['worker_catch_up_s']} s after the last batch); "
        f"total {report['total_s']} s",
        "",
        "where each person's events landed (own: their record alone; wrong person: a record "
        "of someone else's, or for someone who never identified, any identified record; "
        "merged: a record holding theirs and someone else's identifiers)",
        "| scenario | people | events | own | anonymous | wrong person | merged | missing |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [
        (LABELS[Scenario(name)] + ("" if row["claimed"] else " *"), row)
        for name, row in q["by_scenario"].items()
    ]
    rows += [
        ("all who identified", q["identified_people"]),
        ("all who never identified", q["never_identified"]),
    ]
    for label, row in rows:
        cells = [_cell(row, outcome) for outcome in OUTCOMES]
        out.append(f"| {label} | {row['people']:,} | {row['events']:,} | {' | '.join(cells)} |")
    foreign = q["under_another_user_id"]
    fragmentation, merges = q["fragmentation"], q["merges"]
    out += [
        "* not a case the identity graph claims to handle (engine/README.md, Identity rules)",
        "",
        f"events sent under another person's user id (logged out without reset()): "
        f"{foreign['events']:,}, on that person's record {percent(foreign['own_share'])}, "
        f"wrong person {foreign['wrong_person']}, merged {foreign['merged']}, "
        f"missing {foreign['missing']}",
        f"Bond records (persons holding their identifiers) per person who identified: "
        f"{_histogram(fragmentation['records_per_identified_person'])}",
        f"Bond persons per person, by where their own events landed: "
        f"{_histogram(fragmentation['bond_persons_per_person'])}",
        f"true people per Bond person, by the events on it: "
        f"{_histogram(merges['true_persons_per_bond_person'])}; records holding several "
        f"people's identifiers: {merges['records_holding_several_people']}",
    ]
    return out


def _cell(row: dict[str, Any], outcome: str) -> str:
    count, share = row[outcome], row[f"{outcome}_share"]
    return f"{count:,} ({percent(share)})" if count else "0"


def _histogram(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n:,}" for k, n in counts.items()) or "-"
