"""Attribution quality against the simulator's ground truth.

Model members are anonymous ("member 2"), so each is mapped to the real person who made most of
its sessions during the fitting weeks (before the time split); several model members may map to
one person, which the count error and ARI then show. Conversions after the split are scored with
the model as it stood when each happened: nothing from the future is used to attribute them.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, f1_score

from bond.simulate.traffic import Truth
from engine.households.store import Attribution, DriftEvent, SessionRow

WEEK_MS = 7 * 86_400_000
COLD_START_BUCKETS = ((0, 5), (6, 10), (11, 20), (21, 40), (41, 80), (81, 10**9))
RELIABILITY_BINS = 10
DETECTION_HORIZON_MS = 3 * WEEK_MS  # a change found later than this counts as missed
# Changes are also counted apart by the account's sessions before them: with fewer, a newcomer
# and a member not yet told apart look alike, and nobody's silence can mean anything yet.
SETTLED_ACCOUNT = 15


@dataclass
class Scored:
    account: str
    size: int
    correct: bool
    baseline_correct: bool
    confidence: float
    p_true: float
    brier: float
    sessions_seen: int
    after_split: bool
    predicted: str
    actual: str


def evaluate(
    truth: Truth,
    sessions: Sequence[SessionRow],
    attributions: Sequence[Attribution],
    drift: Sequence[DriftEvent],
    account_of: Mapping[int, str],
    *,
    split_ms: int,
    final_members: Mapping[int, int],
) -> dict[str, Any]:
    """All quality metrics, overall and by household size, as one JSON-able dict."""
    by_account: dict[str, list[tuple[SessionRow, int]]] = defaultdict(list)
    for row in sessions:
        account = account_of.get(row.person_id)
        real = truth.sessions.get((row.device, row.start_ms))
        if account is None or real is None or real[0] != account:
            continue
        by_account[account].append((row, real[1]))
    mapping = {account: _mapping(rows, split_ms) for account, rows in by_account.items()}
    sizes = {a: _size(h) for a, h in truth.households.items()}

    scored = [
        s
        for a in attributions
        if (s := _score(a, truth, account_of, mapping, sizes, split_ms)) is not None
    ]
    test = [s for s in scored if s.after_split]
    report: dict[str, Any] = {
        "conversions_scored": len(test),
        "overall": _quality(test, truth, sizes),
        "by_size": {
            str(size): _quality([s for s in test if s.size == size], truth, sizes, only=size)
            for size in sorted(set(sizes.values()))
        },
        "ari": _ari(by_account, sizes),
        "member_count": _count_error(truth, account_of, final_members),
        "reliability": _reliability(test),
        "cold_start": [
            {
                "sessions_seen": f"{lo}-{hi}" if hi < 10**9 else f"{lo}+",
                "n": len(bucket),
                "accuracy": _mean([s.correct for s in bucket]),
            }
            for lo, hi in COLD_START_BUCKETS
            if (bucket := [s for s in scored if lo <= s.sessions_seen <= hi])
        ],
        "drift": _drift(truth, drift, account_of),
    }
    return report


def _size(household: Any) -> int:
    return len({s.member for s in household.sessions}) or 1


def _mapping(rows: list[tuple[SessionRow, int]], split_ms: int) -> dict[int, int]:
    # A member first seen after the split is named by its own sessions: there is nothing earlier.
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for row, real in rows:
        if row.start_ms < split_ms:
            votes[row.member_id][real] += 1
    late: dict[int, Counter[int]] = defaultdict(Counter)
    for row, real in rows:
        late[row.member_id][real] += 1
    return {member: (votes[member] or late[member]).most_common(1)[0][0] for member in late}


def _score(
    a: Attribution,
    truth: Truth,
    account_of: Mapping[int, str],
    mapping: Mapping[str, dict[int, int]],
    sizes: Mapping[str, int],
    split_ms: int,
) -> Scored | None:
    account = account_of.get(a.person_id)
    real = truth.orders.get(a.order_id or "")
    if account is None or real is None or real[0] != account:
        return None
    household = truth.households[account]
    members = sorted({s.member for s in household.sessions})
    to_person = mapping.get(account, {})
    per_person: dict[int, float] = defaultdict(float)
    for member, p in a.probabilities.items():
        if member in to_person:
            per_person[to_person[member]] += p
    actual = real[1]
    predicted = max(per_person, key=lambda m: per_person[m]) if per_person else -1
    before = Counter(s.member for s in household.sessions if s.start_ms < a.timestamp)
    baseline = before.most_common(1)[0][0] if before else members[0]
    brier = sum((per_person.get(m, 0.0) - (1.0 if m == actual else 0.0)) ** 2 for m in members)
    return Scored(
        account,
        sizes[account],
        predicted == actual,
        baseline == actual,
        max(per_person.values()) if per_person else 0.0,
        per_person.get(actual, 0.0),
        brier,
        a.sessions_seen,
        a.timestamp >= split_ms,
        f"{account}:{predicted}",
        f"{account}:{actual}",
    )


def _quality(
    scored: Sequence[Scored], truth: Truth, sizes: Mapping[str, int], only: int | None = None
) -> dict[str, Any]:
    if not scored:
        return {"n": 0}
    confidence = np.array([s.confidence for s in scored])
    correct = np.array([s.correct for s in scored], dtype=float)
    households = [a for a, n in sizes.items() if only is None or n == only]
    return {
        "n": len(scored),
        "households": len(households),
        "accuracy": _mean(correct),
        "baseline_accuracy": _mean([s.baseline_correct for s in scored]),
        "random_accuracy": _mean([1 / s.size for s in scored]),
        "macro_f1": float(
            f1_score(
                [s.actual for s in scored],
                [s.predicted for s in scored],
                average="macro",
                zero_division=0.0,
            )
        ),
        "ece": _ece(confidence, correct),
        "brier": _mean([s.brier for s in scored]),
        "mean_confidence": _mean(confidence),
    }


def _ece(confidence: np.ndarray, correct: np.ndarray) -> float:
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    index = np.clip(np.digitize(confidence, edges) - 1, 0, RELIABILITY_BINS - 1)
    total = 0.0
    for b in range(RELIABILITY_BINS):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(confidence[mask].mean() - correct[mask].mean())
    return round(total / max(len(confidence), 1), 4)


def _reliability(scored: Sequence[Scored]) -> list[dict[str, Any]]:
    rows = []
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    for lo, hi in itertools.pairwise(edges):
        bucket = [s for s in scored if lo <= s.confidence < hi or (hi == 1 and s.confidence == 1)]
        if bucket:
            rows.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": len(bucket),
                    "mean_confidence": _mean([s.confidence for s in bucket]),
                    "accuracy": _mean([s.correct for s in bucket]),
                }
            )
    return rows


def _ari(
    by_account: Mapping[str, list[tuple[SessionRow, int]]], sizes: Mapping[str, int]
) -> dict[str, float | None]:
    per_size: dict[int, list[float]] = defaultdict(list)
    for account, rows in by_account.items():
        if len(rows) >= 2:
            score = adjusted_rand_score([r for _, r in rows], [row.member_id for row, _ in rows])
            per_size[sizes[account]].append(float(score))
    everything = [v for values in per_size.values() for v in values]
    out: dict[str, float | None] = {"overall": _mean(everything) if everything else None}
    for size in sorted(per_size):
        out[str(size)] = _mean(per_size[size])
    return out


def _count_error(
    truth: Truth, account_of: Mapping[int, str], final_members: Mapping[int, int]
) -> dict[str, Any]:
    errors = []
    by_size: dict[int, list[int]] = defaultdict(list)
    for person_id, k in final_members.items():
        account = account_of.get(person_id)
        if account is None or account not in truth.households:
            continue
        household = truth.households[account]
        last = max((s.start_ms for s in household.sessions), default=0)
        recent = {s.member for s in household.sessions if s.start_ms > last - 3 * WEEK_MS}
        errors.append(k - len(recent))
        by_size[len(recent)].append(k - len(recent))
    if not errors:
        return {"n": 0}
    return {
        **_errors(errors),
        "by_size": {str(size): _errors(by_size[size]) for size in sorted(by_size)},
    }


def _errors(errors: Sequence[int]) -> dict[str, Any]:
    values = np.array(errors)
    return {
        "n": len(errors),
        "exact": _mean(values == 0),
        "mean_abs_error": _mean(np.abs(values)),
        "mean_signed_error": _mean(values),
    }


def _drift(
    truth: Truth, drift: Sequence[DriftEvent], account_of: Mapping[int, str]
) -> dict[str, Any]:
    """Joins and leaves found, how late, and alarms that match no change.

    A change is detected by the first drift event of its kind after it, if that came within
    three weeks (later, it is missed but not false). Every other event is a false alarm: any in
    a household that did not change, one before the change or of the other kind, and a second
    one after the change was found.
    """
    alarms: dict[str, list[DriftEvent]] = defaultdict(list)
    for event in drift:
        if (account := account_of.get(event.person_id)) is not None:
            alarms[account].append(event)
    delays: dict[str, list[float]] = {"join": [], "leave": []}
    changes: Counter[str] = Counter()
    settled: Counter[tuple[str, bool]] = Counter()  # (kind, found) after SETTLED_ACCOUNT sessions
    false_alarms = 0
    observed_ms = 0.0
    for account, household in truth.households.items():
        if not household.sessions:
            continue
        observed_ms += household.sessions[-1].start_ms - household.sessions[0].start_ms
        events = alarms.get(account, [])
        change = household.change
        if change is None:
            false_alarms += len(events)
            continue
        changes[change.kind] += 1
        first = next((e for e in events if e.kind == change.kind and e.at_ms >= change.at_ms), None)
        in_time = first is not None and first.at_ms < change.at_ms + DETECTION_HORIZON_MS
        if first is not None and in_time:
            delays[change.kind].append((first.at_ms - change.at_ms) / 86_400_000)
        if sum(s.start_ms < change.at_ms for s in household.sessions) >= SETTLED_ACCOUNT:
            settled[change.kind, in_time] += 1
        false_alarms += len(events) - (first is not None)
    months = observed_ms / (30 * 86_400_000)
    found = delays["join"] + delays["leave"]
    return {
        "changes": sum(changes.values()),
        "detected": len(found),
        "detection_rate": round(len(found) / sum(changes.values()), 3) if changes else None,
        "median_delay_days": _median(found),
        **{
            f"{kind}s": {
                "changes": changes[kind],
                "detected": len(delays[kind]),
                "median_delay_days": _median(delays[kind]),
            }
            for kind in ("join", "leave")
        },
        "false_alarms": false_alarms,
        "false_alarms_per_household_month": round(false_alarms / months, 4) if months else None,
        "after_settled_account": {
            "sessions_before": SETTLED_ACCOUNT,
            **{
                f"{kind}s": {
                    "changes": settled[kind, True] + settled[kind, False],
                    "detected": settled[kind, True],
                }
                for kind in ("join", "leave")
            },
        },
    }


def _median(values: Sequence[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


def _mean(values: Any) -> float:
    array = np.asarray(values, dtype=float)
    return round(float(array.mean()), 4) if array.size else 0.0
