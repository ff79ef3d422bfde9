"""Per-account mixture of members, kept up to date one session at a time.

Each member is a mixture component over a session's features: a full-covariance Gaussian on the
continuous part (hour of day on the circle) times categorical factors for weekday/weekend, the
device (backed off to the device type for a browser the member never used) and the product
categories. Binary and one-hot features inside the Gaussian make its covariance singular: a
cluster of only-weekday sessions gets a needle-thin density there, and EM then splits accounts by
weekday instead of by person. So discrete evidence is scored as what it is.

The state is the members' decayed sufficient statistics, so the real-time path is online EM with
a forgetting factor (the spirit of MiniBatchKMeans with decay): score the session, fade every
statistic by DECAY, add the session weighted by its responsibilities. Now and then (a schedule in
sessions seen, or a confirmed drift) a bounded batch EM refits the mixture on recent sessions
for 1..MAX_MEMBERS members and keeps the number with the best BIC; one member is a valid answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import kmeans_plusplus

from engine.households.features import DEVICE_TYPES, SessionFeatures

MAX_MEMBERS = 4
DECAY = 0.99  # per session of the account: behaviour ~100 sessions old has faded to a third
MIN_MEMBER_WEIGHT = 3.0  # a member needs this many (decayed) sessions to be believed
SESSIONS_PER_MEMBER = 5  # no K with fewer sessions than this per member is tried
DIM = 2
# A prior covariance pulls a member with few sessions toward "spread over the day" instead of
# letting two sessions at 20:00 make a needle that rejects everyone else.
PRIOR_COV = np.diag([0.25, 0.25])
PRIOR_STRENGTH = 2.0
DEVICE_BACKOFF = 2.0  # pseudo-sessions by which a member's device type speaks for a new browser
CATEGORY_SMOOTHING = 0.5
# Hours lie on the unit circle, so a member's covariance can collapse across it (radially) and
# give a few sessions a needle-sharp density; this floor keeps it about an hour wide.
HOUR_NOISE = 0.2
# The textbook BIC counts every smoothed category and device probability as a free parameter and
# then underestimates members on 20-60 sessions; this weight was tuned on simulated households
# with known member counts (one-member accounts still stay one member, see the tests).
BIC_SCALE = 0.15
# The hour evidence counts half: a person's day has several peaks (lunch, evening) and a single
# Gaussian per member would otherwise rather split one person's lunch from their evening than
# split two people.
HOUR_WEIGHT = 0.5
EM_ITERATIONS = 40
EM_INITS = 2
EM_TOL = 1e-4


@dataclass
class Encoded:
    x: np.ndarray  # (n, DIM)
    weekend: np.ndarray  # (n, 2) one-hot: weekday, weekend
    devices: np.ndarray  # (n, D) one-hot
    types: np.ndarray  # (n, 3) one-hot
    categories: np.ndarray  # (n, V) capped counts


@dataclass
class HouseholdModel:
    devices: list[str] = field(default_factory=list)
    device_types: list[int] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=lambda: [1])
    next_member_id: int = 2
    n: np.ndarray = field(default_factory=lambda: np.zeros(1))
    s1: np.ndarray = field(default_factory=lambda: np.zeros((1, DIM)))
    s2: np.ndarray = field(default_factory=lambda: np.zeros((1, DIM, DIM)))
    dev: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    typ: np.ndarray = field(default_factory=lambda: np.zeros((1, len(DEVICE_TYPES))))
    wkd: np.ndarray = field(default_factory=lambda: np.zeros((1, 2)))
    cat: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    sessions_seen: int = 0

    @property
    def k(self) -> int:
        return len(self.member_ids)

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, sessions: Sequence[SessionFeatures]) -> Encoded:
        """Encode sessions, growing the device and category vocabularies as needed."""
        for f in sessions:
            self._device_index(f)
            for name, _ in f.categories:
                self._category_index(name)
        n = len(sessions)
        x = np.array([[f.hour_sin, f.hour_cos] for f in sessions]).reshape(n, DIM)
        weekend = np.array([[1.0 - f.weekend, f.weekend] for f in sessions]).reshape(n, 2)
        devices = np.zeros((n, len(self.devices)))
        types = np.zeros((n, len(DEVICE_TYPES)))
        categories = np.zeros((n, len(self.categories)))
        dev_index = {d: i for i, d in enumerate(self.devices)}
        cat_index = {c: i for i, c in enumerate(self.categories)}
        for i, f in enumerate(sessions):
            devices[i, dev_index[f.device]] = 1.0
            types[i, DEVICE_TYPES.index(f.device_type)] = 1.0
            for name, count in f.categories:
                categories[i, cat_index[name]] = count
        return Encoded(x, weekend, devices, types, categories)

    def _device_index(self, f: SessionFeatures) -> None:
        if f.device not in self.devices:
            self.devices.append(f.device)
            self.device_types.append(DEVICE_TYPES.index(f.device_type))
            self.dev = np.pad(self.dev, ((0, 0), (0, 1)))

    def _category_index(self, name: str) -> None:
        if name not in self.categories:
            self.categories.append(name)
            self.cat = np.pad(self.cat, ((0, 0), (0, 1)))

    # -- scoring ----------------------------------------------------------------------------

    def joint_log_likelihood(self, data: Encoded) -> np.ndarray:
        """log p(session, member k) for each session and member: shape (n, K)."""
        n_k = self.n
        weights = (n_k + 1e-3) / (n_k.sum() + 1e-3 * self.k)
        safe = np.maximum(n_k, 1e-9)[:, None]
        mu = self.s1 / safe
        scatter = self.s2 - n_k[:, None, None] * np.einsum("kd,ke->kde", mu, mu)
        cov = (scatter + PRIOR_STRENGTH * PRIOR_COV) / (n_k + PRIOR_STRENGTH)[:, None, None]
        cov += HOUR_NOISE * np.eye(DIM)
        precision = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        diff = data.x[:, None, :] - mu[None, :, :]
        maha = np.einsum("nkd,kde,nke->nk", diff, precision, diff)
        gauss = -0.5 * (DIM * math.log(2 * math.pi) + logdet[None, :] + maha)

        type_p = (self.typ + 1.0) / (n_k[:, None] + len(DEVICE_TYPES))
        type_of = np.asarray(self.device_types, dtype=int)
        per_type = np.bincount(type_of, minlength=len(DEVICE_TYPES)) + 1.0
        share = DEVICE_BACKOFF * type_p[:, type_of] / per_type[type_of][None, :]
        dev_p = (self.dev + share) / (n_k[:, None] + DEVICE_BACKOFF)
        device = data.devices @ np.log(dev_p).T

        v = len(self.categories)
        theta = (self.cat + CATEGORY_SMOOTHING) / (
            self.cat.sum(axis=1, keepdims=True) + CATEGORY_SMOOTHING * (v + 1)
        )
        category = data.categories @ np.log(theta).T
        weekend = data.weekend @ np.log((self.wkd + 1.0) / (n_k[:, None] + 2.0)).T
        joint: np.ndarray = (
            np.log(weights)[None, :] + HOUR_WEIGHT * gauss + weekend + device + category
        )
        return joint

    def logits(self, features: SessionFeatures) -> np.ndarray:
        """Uncalibrated log posterior weights of the members for one session (max is 0)."""
        joint = self.joint_log_likelihood(self.encode([features]))[0]
        centred: np.ndarray = joint - joint.max()
        return centred

    def log_likelihood(self, features: SessionFeatures) -> float:
        joint = self.joint_log_likelihood(self.encode([features]))[0]
        return float(np.logaddexp.reduce(joint))

    # -- learning ---------------------------------------------------------------------------

    def update(self, features: SessionFeatures) -> tuple[np.ndarray, float]:
        """Online EM step for one finished session; returns its responsibilities and log-lik."""
        data = self.encode([features])
        joint = self.joint_log_likelihood(data)[0]
        total = float(np.logaddexp.reduce(joint))
        resp = np.exp(joint - total) if self.sessions_seen else np.ones(self.k) / self.k
        self._fade(DECAY)
        self._accumulate(data, resp[None, :])
        self.sessions_seen += 1
        return resp, total

    def _fade(self, factor: float) -> None:
        for name in ("n", "s1", "s2", "wkd", "dev", "typ", "cat"):
            setattr(self, name, getattr(self, name) * factor)

    def _accumulate(self, data: Encoded, resp: np.ndarray) -> None:
        self.n = self.n + resp.sum(axis=0)
        self.s1 = self.s1 + resp.T @ data.x
        self.s2 = self.s2 + np.einsum("nk,nd,ne->kde", resp, data.x, data.x)
        self.wkd = self.wkd + resp.T @ data.weekend
        self.dev = self.dev + resp.T @ data.devices
        self.typ = self.typ + resp.T @ data.types
        self.cat = self.cat + resp.T @ data.categories

    def _set_from(self, data: Encoded, resp: np.ndarray) -> None:
        k = resp.shape[1]
        self.n = np.zeros(k)
        self.s1 = np.zeros((k, DIM))
        self.s2 = np.zeros((k, DIM, DIM))
        self.wkd = np.zeros((k, 2))
        self.dev = np.zeros((k, len(self.devices)))
        self.typ = np.zeros((k, len(DEVICE_TYPES)))
        self.cat = np.zeros((k, len(self.categories)))
        self._accumulate(data, resp)

    def n_parameters(self) -> int:
        per_member = DIM + DIM * (DIM + 1) // 2 + 1 + len(DEVICE_TYPES) - 1
        per_member += max(len(self.devices) - 1, 0) + max(len(self.categories) - 1, 0)
        return self.k * per_member + self.k - 1

    # -- reading ----------------------------------------------------------------------------

    def profiles(self) -> list[dict[str, Any]]:
        """A readable description of each member: typical hours, devices, top categories."""
        total = float(self.n.sum()) or 1.0
        out = []
        for k, member in enumerate(self.member_ids):
            n_k = max(float(self.n[k]), 1e-9)
            sin, cos = self.s1[k] / n_k
            weekend = self.wkd[k, 1] / n_k
            hour = (math.atan2(sin, cos) / (2 * math.pi) * 24) % 24
            # Mean resultant length R gives the circular spread: sqrt(-2 ln R) radians.
            resultant = min(max(math.hypot(sin, cos), 1e-6), 1.0)
            spread_h = math.sqrt(-2 * math.log(resultant)) / (2 * math.pi) * 24
            devices = sorted(
                zip(self.devices, self.dev[k], self.device_types, strict=True),
                key=lambda d: -d[1],
            )
            cats = sorted(zip(self.categories, self.cat[k], strict=True), key=lambda c: -c[1])
            cat_total = float(self.cat[k].sum()) or 1.0
            out.append(
                {
                    "member": member,
                    "share": round(float(self.n[k]) / total, 3),
                    "typical_hour": round(hour, 1),
                    "hour_spread": round(min(spread_h, 12.0), 1),
                    "weekend_share": round(float(weekend), 3),
                    "devices": [
                        {"device": d, "type": DEVICE_TYPES[t], "share": round(float(c) / n_k, 3)}
                        for d, c, t in devices[:3]
                        if c / n_k >= 0.05
                    ],
                    "top_categories": [
                        {"category": c, "share": round(float(v) / cat_total, 3)}
                        for c, v in cats[:3]
                        if v > 0
                    ],
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "device_types": self.device_types,
            "categories": self.categories,
            "member_ids": self.member_ids,
            "next_member_id": self.next_member_id,
            "n": self.n.tolist(),
            "s1": self.s1.tolist(),
            "s2": self.s2.tolist(),
            "dev": self.dev.tolist(),
            "typ": self.typ.tolist(),
            "wkd": self.wkd.tolist(),
            "cat": self.cat.tolist(),
            "sessions_seen": self.sessions_seen,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HouseholdModel:
        k = len(raw["member_ids"])
        return cls(
            devices=list(raw["devices"]),
            device_types=list(raw["device_types"]),
            categories=list(raw["categories"]),
            member_ids=list(raw["member_ids"]),
            next_member_id=raw["next_member_id"],
            n=np.asarray(raw["n"], dtype=float),
            s1=np.asarray(raw["s1"], dtype=float).reshape(k, DIM),
            s2=np.asarray(raw["s2"], dtype=float).reshape(k, DIM, DIM),
            dev=np.asarray(raw["dev"], dtype=float).reshape(k, len(raw["devices"])),
            typ=np.asarray(raw["typ"], dtype=float).reshape(k, len(DEVICE_TYPES)),
            wkd=np.asarray(raw["wkd"], dtype=float).reshape(k, 2),
            cat=np.asarray(raw["cat"], dtype=float).reshape(k, len(raw["categories"])),
            sessions_seen=raw["sessions_seen"],
        )


def refit(
    model: HouseholdModel,
    sessions: Sequence[SessionFeatures],
    weights: np.ndarray,
    *,
    seed: int = 0,
) -> HouseholdModel:
    """Batch EM on recent sessions for 1..MAX_MEMBERS members; the best BIC wins.

    `weights` fade older sessions the way the online path does. The result keeps the member ids
    of `model` where the new members match old ones (most shared sessions), so "member 2" stays
    the same person across refits; new members get fresh ids.
    """
    base = HouseholdModel(
        devices=list(model.devices),
        device_types=list(model.device_types),
        categories=list(model.categories),
        sessions_seen=model.sessions_seen,
    )
    data = base.encode(sessions)
    n_eff = float(weights.sum())
    rng = np.random.default_rng(seed)
    best: tuple[float, HouseholdModel, np.ndarray] | None = None
    max_k = min(MAX_MEMBERS, max(1, int(n_eff // SESSIONS_PER_MEMBER)))
    for k in range(1, max_k + 1):
        fitted = _em(base, data, weights, k, rng)
        if fitted is None:
            continue
        candidate, resp, loglik = fitted
        if k > 1 and candidate.n.min() < MIN_MEMBER_WEIGHT:
            continue
        bic = -2 * loglik + BIC_SCALE * candidate.n_parameters() * math.log(max(n_eff, 2.0))
        if best is None or bic < best[0]:
            best = (bic, candidate, resp)
    assert best is not None  # k = 1 always fits
    _, chosen, resp = best
    _carry_ids(model, sessions, chosen, resp)
    return chosen


def _em(
    base: HouseholdModel, data: Encoded, weights: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[HouseholdModel, np.ndarray, float] | None:
    n = data.x.shape[0]
    if n < k:
        return None
    embedding = np.hstack(
        [
            data.x,
            1.5 * data.devices,
            data.categories / np.maximum(data.categories.sum(axis=1, keepdims=True), 1.0),
        ]
    )
    best: tuple[HouseholdModel, np.ndarray, float] | None = None
    for _ in range(EM_INITS if k > 1 else 1):
        centres, _ = kmeans_plusplus(
            embedding, k, random_state=int(rng.integers(2**31 - 1)), sample_weight=weights
        )
        distance = ((embedding[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        resp = np.eye(k)[distance.argmin(axis=1)]
        candidate = HouseholdModel(
            devices=base.devices,
            device_types=base.device_types,
            categories=base.categories,
            member_ids=list(range(1, k + 1)),
            sessions_seen=base.sessions_seen,
        )
        previous = -math.inf
        loglik = -math.inf
        for _ in range(EM_ITERATIONS):
            candidate._set_from(data, resp * weights[:, None])
            joint = candidate.joint_log_likelihood(data)
            per_session = np.logaddexp.reduce(joint, axis=1)
            loglik = float(weights @ per_session)
            resp = np.exp(joint - per_session[:, None])
            if loglik - previous < EM_TOL * max(abs(loglik), 1.0):
                break
            previous = loglik
        candidate._set_from(data, resp * weights[:, None])
        if best is None or loglik > best[2]:
            best = (candidate, resp, loglik)
    return best


def _carry_ids(
    old: HouseholdModel,
    sessions: Sequence[SessionFeatures],
    new: HouseholdModel,
    resp: np.ndarray,
) -> None:
    new.next_member_id = old.next_member_id
    if old.n.sum() <= 0:
        new.member_ids = list(range(1, new.k + 1))
        new.next_member_id = max(old.next_member_id, new.k + 1)
        return
    joint = old.joint_log_likelihood(old.encode(sessions))
    old_resp = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))
    overlap = old_resp.T @ resp  # (K_old, K_new): sessions both would give the same member
    rows, cols = linear_sum_assignment(-overlap)
    ids: list[int | None] = [None] * new.k
    for r, c in zip(rows, cols, strict=True):
        ids[c] = old.member_ids[r]
    for i, member in enumerate(ids):
        if member is None:
            ids[i] = new.next_member_id
            new.next_member_id += 1
    new.member_ids = [m for m in ids if m is not None]
