"""Batch refit: re-estimate an account's members from recent sessions and choose how many.

EM runs for a few candidate numbers of members and the best penalised likelihood wins: one
member (always a candidate, so a one-person account stays one member), the current number,
one fewer and one more. Each candidate starts from a few places, because EM only climbs to the
nearest optimum: the current model's own split of the sessions (so a refit that finds nothing
new changes little), its largest member split in two, the smallest merged away, and k-means++
over the devices (each browser's sessions start together, which finds "her phone" and "his
laptop" when the session-level split mixes them). A refit moves the count by one, so it costs
a few EMs however many members there are.

The penalty is BIC's, scaled: textbook BIC counts every smoothed device and category
probability as a free parameter and underestimates members on a few dozen sessions. On top of
it, phones are personal: two phone browsers busy in the same weeks are most likely two people,
so a member using more than one at once costs log(PHONE_SHARING) per extra phone. Only
overlapping phones count, because a cleared cookie gives one phone a new browser id that
replaces the old one rather than running beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.households.features import DEVICE_TYPES, SessionFeatures
from engine.households.likelihood import (
    HOUR_WEIGHT,
    Encoded,
    Stats,
    joint,
    posterior,
)
from engine.households.model import HouseholdModel

MAX_MEMBERS = 5  # four people and one who joins them (about 9% of US households are 5+)
MIN_MEMBER_WEIGHT = 3.0  # a member needs this many (decayed) sessions to be believed
SESSIONS_PER_MEMBER = 5  # no K with fewer sessions than this per member is tried
BIC_SCALE = 0.25
PHONE_SHARING = 0.01  # how often one person keeps two phone browsers busy at once
MIN_PHONE_SESSIONS = 2.0
EM_ITERATIONS = 30
EM_TOL = 1e-4
MOBILE = DEVICE_TYPES.index("mobile")


@dataclass(frozen=True)
class Fit:
    stats: Stats
    resp: np.ndarray  # (n, K) responsibilities of the window's sessions
    loglik: float


@dataclass(frozen=True)
class Refit:
    model: HouseholdModel
    resp: np.ndarray  # (n, K), columns in the order of model.member_ids
    new_members: list[int]  # ids that did not exist before this refit


def refit(
    model: HouseholdModel,
    sessions: Sequence[SessionFeatures],
    weights: np.ndarray,
    *,
    seed: int = 0,
    newcomer: np.ndarray | None = None,
) -> Refit:
    """Batch EM on recent sessions for 1..MAX_MEMBERS members; the best penalised fit wins.

    `weights` fade older sessions the way the online path does. `newcomer` marks (1.0) the
    sessions a change detector found better explained by someone new: the candidate with one
    member more also starts from the current members plus one made of those. The result keeps
    the member ids of `model` where new members match old ones (most shared sessions), so
    "member 2" stays the same person across refits; new members get fresh ids.
    """
    model.learn_vocabulary(sessions)
    data = model.encode(sessions)
    n_eff = float(weights.sum())
    rng = np.random.default_rng(seed)
    warm = posterior(joint(model.stats(), data))[0] if sum(model.n) > 0 else None
    most = min(MAX_MEMBERS, max(1, int(n_eff // SESSIONS_PER_MEMBER)))
    best: tuple[float, Fit] | None = None
    for starts in _candidates(data, weights, warm, most, rng, newcomer):
        fit = _best_em(data, weights, starts)
        if fit.stats.k > 1 and fit.stats.n.min() < MIN_MEMBER_WEIGHT:
            continue
        score = _score(fit, data, weights, n_eff)
        if best is None or score > best[0]:
            best = (score, fit)
    assert best is not None  # one member always fits
    chosen = best[1]
    ids, next_id = _carry_ids(model, warm, chosen.resp)
    new_members = [m for m in ids if m not in model.member_ids]
    return Refit(model.with_stats(chosen.stats, ids, next_id), chosen.resp, new_members)


def _candidates(
    data: Encoded,
    weights: np.ndarray,
    warm: np.ndarray | None,
    most: int,
    rng: np.random.Generator,
    newcomer: np.ndarray | None,
) -> list[list[np.ndarray]]:
    """Starting points of EM, one list per candidate number of members.

    One member; the current members as they are and whole browsers grouped into as many;
    one fewer (the smallest merged away); one more: the largest split in two, whole browsers
    grouped, and the newcomer if one is marked. A refit moves the count by one at a time (or
    back to one), which keeps it to a few EMs.
    """
    n = data.size
    out = [[np.ones((n, 1))]]
    k = 1 if warm is None else warm.shape[1]
    if warm is not None and 2 <= k <= most:
        same = [warm]
        by_device = _device_start(data, weights, k, rng)
        if by_device is not None:
            same.append(by_device)  # EM only climbs: whole browsers may find a better split
        out.append(same)
    if warm is not None and k - 1 >= 2:
        out.append([np.delete(warm, int((weights @ warm).argmin()), axis=1)])
    if k + 1 <= most and n > k:
        more = [_split(data, weights, warm, rng)]
        by_device = _device_start(data, weights, k + 1, rng)
        if by_device is not None:
            more.append(by_device)
        if newcomer is not None and warm is not None and newcomer.any():
            more.append(np.hstack([warm * (1.0 - newcomer)[:, None], newcomer[:, None]]))
        if more:
            out.append(more)
    return out


def _score(fit: Fit, data: Encoded, weights: np.ndarray, n_eff: float) -> float:
    score = fit.loglik - 0.5 * BIC_SCALE * _parameters(fit.stats) * math.log(max(n_eff, 2.0))
    return score + phone_log_prior(_phone_spans(fit, data))


def _split(
    data: Encoded, weights: np.ndarray, warm: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """The current members with the largest one's sessions split in two by k-means++ seeds."""
    n = data.size
    resp = np.ones((n, 1)) if warm is None else warm
    largest = int((weights @ resp).argmax())
    proportions = data.categories / np.maximum(data.categories.sum(axis=1, keepdims=True), 1.0)
    embedding = np.hstack([data.x, 1.5 * data.devices, proportions])
    mine = resp[:, largest] * weights
    side = _nearest(embedding, _seeds(embedding, mine + 1e-12, 2, rng)) == 1
    start: np.ndarray = np.hstack([resp, np.zeros((n, 1))])
    start[side, -1] = resp[side, largest]
    start[side, largest] = 0.0
    return start


def _device_start(
    data: Encoded, weights: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray | None:
    """Group whole browsers into k members by their average session; sessions follow."""
    counts = weights @ data.devices
    used = np.flatnonzero(counts > 0)
    if len(used) < k:
        return None
    proportions = data.categories / np.maximum(data.categories.sum(axis=1, keepdims=True), 1.0)
    session_profile = np.hstack([data.x, proportions])
    device_profile = (data.devices[:, used].T * weights) @ session_profile / counts[used][:, None]
    group = _nearest(device_profile, _seeds(device_profile, counts[used], k, rng))
    start: np.ndarray = np.eye(k)[group[data.devices[:, used].argmax(axis=1)]]
    return start


def _seeds(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next seed drawn with probability weight x squared distance."""
    chosen = [_draw(weights, rng)]
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        pick = _draw(weights * nearest, rng)
        chosen.append(pick)
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(axis=1))
    return points[chosen]


def _draw(mass: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to `mass` (uniformly if it is all zero)."""
    cumulative = np.cumsum(mass)
    if cumulative[-1] <= 0:
        return int(rng.integers(len(mass)))
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    result: np.ndarray = (
        ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    )
    return result


def _best_em(data: Encoded, weights: np.ndarray, starts: list[np.ndarray]) -> Fit:
    best: Fit | None = None
    for resp in starts:
        fit = _em(data, weights, resp)
        if best is None or fit.loglik > best.loglik:
            best = fit
    assert best is not None
    return best


def _em(data: Encoded, weights: np.ndarray, resp: np.ndarray) -> Fit:
    weighted = data.matrix * weights[:, None]
    previous = -math.inf
    loglik = -math.inf
    iterations = EM_ITERATIONS if resp.shape[1] > 1 else 1
    for _ in range(iterations):
        stats = Stats(resp.T @ weighted, data.devices_known)
        resp, per_session = posterior(joint(stats, data))
        loglik = float(weights @ per_session)
        if loglik - previous < EM_TOL * max(abs(loglik), 1.0):
            break
        previous = loglik
    return Fit(Stats(resp.T @ weighted, data.devices_known), resp, loglik)


def _parameters(stats: Stats) -> float:
    k, devices = (int(v) for v in stats.devices.shape)
    categories = int(stats.categories.shape[1])
    hour = 5 * HOUR_WEIGHT  # half-weighted evidence, half the cost
    per_member = hour + 1 + (len(DEVICE_TYPES) - 1) + max(devices - 1, 0) + max(categories - 1, 0)
    return k * per_member + k - 1


def _phone_spans(fit: Fit, data: Encoded) -> list[list[tuple[int, int]]]:
    """Per member, the (first, last) window positions of each phone that is mostly theirs."""
    phones = [i for i, t in enumerate(data.device_types) if t == MOBILE]
    if len(phones) < 2:  # one phone is no evidence either way
        return [[] for _ in range(fit.resp.shape[1])]
    usage = fit.resp.T @ data.devices[:, phones]  # (K, phones)
    totals = usage.sum(axis=0)
    spans: list[list[tuple[int, int]]] = [[] for _ in range(usage.shape[0])]
    for j, device in enumerate(phones):
        if totals[j] < MIN_PHONE_SESSIONS:
            continue
        owner = int(usage[:, j].argmax())
        if usage[owner, j] >= 0.5 * totals[j]:
            rows = np.flatnonzero(data.devices[:, device])
            spans[owner].append((int(rows[0]), int(rows[-1])))
    return spans


def phone_log_prior(spans_per_member: Sequence[Sequence[tuple[int, int]]]) -> float:
    """log prior of members using several phones at once: log(PHONE_SHARING) per extra one.

    Each member's phones are given as (first, last) positions of their use; phones whose spans
    do not overlap are one phone under successive browser ids and cost nothing.
    """
    extra = 0
    for spans in spans_per_member:
        edges = sorted([(first, 0) for first, _ in spans] + [(last, 1) for _, last in spans])
        depth = deepest = 0
        for _, is_end in edges:
            depth += -1 if is_end else 1
            deepest = max(deepest, depth)
        extra += max(deepest - 1, 0)
    return extra * math.log(PHONE_SHARING)


def _carry_ids(
    old: HouseholdModel, old_resp: np.ndarray | None, resp: np.ndarray
) -> tuple[list[int], int]:
    k = resp.shape[1]
    next_id = old.next_member_id
    if old_resp is None:
        return list(range(1, k + 1)), max(next_id, k + 1)
    # Imported at an account's first refit, not when the worker starts: scipy.optimize takes
    # over a second to import, which a worker restarted after a crash would otherwise wait.
    from scipy.optimize import linear_sum_assignment

    overlap = old_resp.T @ resp  # (K_old, K_new): sessions both would give the same member
    rows, cols = linear_sum_assignment(-overlap)
    ids: list[int | None] = [None] * k
    for r, c in zip(rows, cols, strict=True):
        ids[c] = old.member_ids[r]
    out = []
    for member in ids:
        if member is None:
            member = next_id
            next_id += 1
        out.append(member)
    return out, next_id
