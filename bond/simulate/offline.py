"""The household engine fed in-process with simulated traffic: quick evaluation and calibration.

This skips HTTP and the identity graph (each simulated account is its own person from its first
event), so it measures the model alone; the canary measures the whole path.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bond.simulate import evaluate as evaluation
from bond.simulate.households import Household, Settings, generate
from bond.simulate.report import print_report
from bond.simulate.traffic import Truth, messages, truth_of
from bond.storage.sqlite import connect
from collector.validate import parse_time
from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.calibration import Calibration, load, save
from engine.households.calibration_fit import fit
from engine.households.processor import HouseholdProcessor, Timings
from engine.households.store import migrate_households

BATCH = 2000
T = TypeVar("T")


@dataclass
class Run:
    households: list[Household]
    truth: Truth
    conn: sqlite3.Connection
    account_of: dict[int, str]
    timings: Timings
    settings: Settings
    events: int = 0
    hook_cpu_s: float = 0.0  # CPU time of the household processor alone

    def report(self, calibration: Calibration | None = None) -> dict[str, Any]:
        """The quality report; with `calibration`, as if the run's orders had been attributed
        under it instead. A calibration only maps the model's logits to probabilities, so the
        members and their fits would be the run's own: no second run is needed."""
        attributions = store.attributions(self.conn)
        if calibration is not None:
            attributions = [_recalibrated(a, calibration) for a in attributions]
        return score(self.conn, attributions, self.truth, self.account_of, self.settings)


def _recalibrated(a: store.Attribution, calibration: Calibration) -> store.Attribution:
    member, probability, probabilities = calibration.attribute(
        np.array(a.logits), a.sessions_seen, list(a.probabilities)
    )
    return a._replace(member_id=member, probability=probability, probabilities=probabilities)


def run(settings: Settings, calibration: Calibration, *, path: str = ":memory:") -> Run:
    households = generate(settings)
    truth = truth_of(households)
    conn = connect_memory() if path == ":memory:" else connect_file(path)
    migrate_households(conn)
    person_of = {h.account: h.index + 1 for h in households}
    timings = Timings()
    processor = HouseholdProcessor(calibration, timings=timings)
    events, cpu = 0, 0.0
    for batch in batches(applied(messages(households), person_of), BATCH):
        started = time.process_time()
        conn.execute("BEGIN")
        processor.process(conn, batch)
        conn.execute("COMMIT")
        cpu += time.process_time() - started
        events += len(batch)
    account_of = {p: a for a, p in person_of.items()}
    return Run(households, truth, conn, account_of, timings, settings, events, cpu)


def score(
    conn: sqlite3.Connection,
    attributions: list[store.Attribution],
    truth: Truth,
    account_of: dict[int, str],
    settings: Settings,
) -> dict[str, Any]:
    final = dict(conn.execute("SELECT person_id, members FROM households_models").fetchall())
    return evaluation.evaluate(
        truth,
        store.all_sessions(conn),
        attributions,
        store.drift_events(conn),
        account_of,
        split_ms=split_ms(settings),
        final_members=final,
    )


def split_ms(settings: Settings) -> int:
    """Fit on the first half of the weeks, score conversions in the second half."""
    return settings.start_ms + (settings.weeks // 2) * evaluation.WEEK_MS


def calibrate(settings: Settings) -> Calibration:
    """Fit the temperature on simulated households (their own seed, never the evaluation's)."""
    result = run(settings, Calibration())
    logits, correct, seen = [], [], []
    sessions_by_account = _truth_mapping(result)
    split = split_ms(settings)
    # The same time split as the evaluation: calibrate what is measured, past the cold start.
    for a in store.attributions(result.conn):
        if a.timestamp < split:
            continue
        account = result.account_of[a.person_id]
        real = result.truth.orders.get(a.order_id or "")
        if real is None:
            continue
        to_person = sessions_by_account.get(account, {})
        logits.append(np.array(a.logits))
        correct.append(np.array([to_person.get(m) == real[1] for m in a.probabilities]))
        seen.append(a.sessions_seen)
    return fit(
        logits,
        correct,
        seen,
        {
            "households": len(result.households),
            "difficulty": settings.difficulty,
            "seed": settings.seed,
            "conversions": len(logits),
        },
    )


def _truth_mapping(result: Run) -> dict[str, dict[int, int]]:
    votes: dict[str, dict[int, Counter[int]]] = defaultdict(lambda: defaultdict(Counter))
    for row in store.all_sessions(result.conn):
        account = result.account_of[row.person_id]
        real = result.truth.sessions.get((row.device, row.start_ms))
        if real is not None:
            votes[account][row.member_id][real[1]] += 1
    return {
        account: {m: c.most_common(1)[0][0] for m, c in members.items()}
        for account, members in votes.items()
    }


def connect_memory() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None)


def connect_file(path: str) -> sqlite3.Connection:
    return connect(Path(path), durable=False)


def applied(stream: Iterable[dict[str, Any]], person_of: dict[str, int]) -> Iterator[AppliedEvent]:
    for seq, m in enumerate(stream, start=1):
        yield AppliedEvent(
            seq=seq,
            person_id=person_of[m["userId"]],
            identified=True,
            source="default",
            type=m["type"],
            event=m.get("event"),
            anonymous_id=m.get("anonymousId"),
            user_id=m.get("userId"),
            timestamp=parse_time(m["timestamp"], "timestamp"),
            received_at=0,
            user_agent=m["context"].get("userAgent"),
            properties=m.get("properties", {}),
            traits=m.get("traits", {}),
            context=m["context"],
        )


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_and_report(settings: Settings, *, as_json: bool) -> int:
    """`bond simulate --offline`: the model alone, with its per-session update cost."""
    started = time.perf_counter()
    result = run(settings, load())
    updates = np.array(result.timings.updates or [0.0]) * 1000
    refits = np.array(result.timings.refits or [0.0]) * 1000
    report = {
        "households": len(result.households),
        "sessions": len(result.truth.sessions),
        "conversions": len(result.truth.orders),
        "difficulty": settings.difficulty,
        "seed": settings.seed,
        "model_update_ms": {
            "p50": round(float(np.percentile(updates, 50)), 3),
            "p99": round(float(np.percentile(updates, 99)), 3),
            "refits": len(result.timings.refits),
            "refit_mean": round(float(refits.mean()), 2),
            "refit_p99": round(float(np.percentile(refits, 99)), 1),
        },
        "hook_us_per_event": round(1e6 * result.hook_cpu_s / max(result.events, 1), 1),
        "total_s": round(time.perf_counter() - started, 1),
        "quality": result.report(),
    }
    print_report(report, as_json=as_json)
    return 0


def fit_and_save(settings: Settings) -> int:
    """`bond simulate --calibrate`: fit on households of their own seed and ship the result."""
    calibration = calibrate(replace(settings, seed=settings.seed + 1000))
    save(calibration)
    print(
        f"temperature {calibration.temperature}, one-member rate "
        f"{calibration.single_y[0]:.3f}..{calibration.single_y[-1]:.3f} by sessions seen"
    )
    return 0
