"""An account's members, kept up to date one session at a time.

The state is each member's decayed sufficient statistics (likelihood.py says what a member is),
so the real-time path is online EM with a forgetting factor, in the spirit of MiniBatchKMeans
with decay: score the finished session, fade every statistic by DECAY, add the session weighted
by its responsibilities. Fading is one multiplication of a common scale, and scoring and adding
touch only the session's own device and categories, in plain Python: at most five members and a
handful of categories are cheaper that way than as array operations. Now and then a batch refit
(refit.py) re-estimates the members from recent sessions and chooses how many there are.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.households.features import DEVICE_TYPES, SessionFeatures
from engine.households.likelihood import (
    CATEGORY_SMOOTHING,
    DEVICE_BACKOFF,
    HOUR_NOISE,
    HOUR_WEIGHT,
    LOG_2PI,
    NOVEL_HOUR,
    PRIOR_STRENGTH,
    PRIOR_VARIANCE,
    WEIGHT_FLOOR,
    Encoded,
    Stats,
    encode,
    stats_table,
)

DECAY = 0.99  # per session of the account: behaviour ~100 sessions old has faded to a third
# Statistics are stored divided by a running scale (the product of all fades); before the scale
# underflows they are multiplied out once.
RESCALE_BELOW = 1e-200


# A member with no sessions has the prior's hour Gaussian: centred and round, so every hour (a
# point at distance 1 from the centre) has this one log-density under it.
_NOVEL_VARIANCE = PRIOR_VARIANCE + HOUR_NOISE
_NOVEL_HOUR = (
    -0.5 * HOUR_WEIGHT * (2 * LOG_2PI + 2 * math.log(_NOVEL_VARIANCE) + 1 / _NOVEL_VARIANCE)
)


def _rows(k: int, width: int) -> list[list[float]]:
    return [[0.0] * width for _ in range(k)]


@dataclass
class HouseholdModel:
    devices: list[str] = field(default_factory=list)
    device_types: list[int] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=lambda: [1])
    next_member_id: int = 2
    n: list[float] = field(default_factory=lambda: [0.0])
    s1: list[list[float]] = field(default_factory=lambda: _rows(1, 2))
    s2: list[list[float]] = field(default_factory=lambda: _rows(1, 3))
    weekend: list[list[float]] = field(default_factory=lambda: _rows(1, 2))
    types: list[list[float]] = field(default_factory=lambda: _rows(1, len(DEVICE_TYPES)))
    dev: list[list[float]] = field(default_factory=lambda: _rows(1, 0))
    cat: list[list[float]] = field(default_factory=lambda: _rows(1, 0))
    cat_total: list[float] = field(default_factory=lambda: [0.0])
    scale: float = 1.0
    sessions_seen: int = 0

    def __post_init__(self) -> None:
        self._device_index = {d: i for i, d in enumerate(self.devices)}
        self._category_index = {c: i for i, c in enumerate(self.categories)}
        self._per_type = [0] * len(DEVICE_TYPES)
        for t in self.device_types:
            self._per_type[t] += 1

    @property
    def k(self) -> int:
        return len(self.member_ids)

    # -- the per-session path ---------------------------------------------------------------

    def log_joint(self, f: SessionFeatures) -> list[float]:
        """log p(session, member k) per member; the same numbers as likelihood.joint."""
        sc = self.scale
        members = len(self.n)
        total = sum(self.n) * sc
        x, y = f.hour_sin, f.hour_cos
        w = 1 if f.weekend else 0
        t = DEVICE_TYPES.index(f.device_type)
        d = self._device_index.get(f.device)
        per_type = self._per_type[t] + (1.0 if d is None else 0.0) + 1.0
        hits = [(self._category_index.get(name), count) for name, count in f.categories]
        new_categories = sum(1 for i, _ in hits if i is None)
        v_plus_one = len(self.categories) + new_categories + 1
        prior = PRIOR_STRENGTH * PRIOR_VARIANCE
        out = []
        for k in range(members):
            n_k = self.n[k] * sc
            value = math.log((n_k + WEIGHT_FLOOR) / (total + WEIGHT_FLOOR * members))
            s1, s2 = self.s1[k], self.s2[k]
            safe = max(n_k, 1e-12)
            mx, my = s1[0] * sc / safe, s1[1] * sc / safe
            spread = n_k + PRIOR_STRENGTH
            a = (s2[0] * sc - n_k * mx * mx + prior) / spread + HOUR_NOISE
            b = (s2[1] * sc - n_k * mx * my) / spread
            c = (s2[2] * sc - n_k * my * my + prior) / spread + HOUR_NOISE
            det = a * c - b * b
            dx, dy = x - mx, y - my
            maha = (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
            value += HOUR_WEIGHT * -0.5 * (2 * LOG_2PI + math.log(det) + maha)
            value += math.log((self.weekend[k][w] * sc + 1.0) / (n_k + 2.0))
            type_p = (self.types[k][t] * sc + 1.0) / (n_k + len(DEVICE_TYPES))
            share = DEVICE_BACKOFF * type_p / per_type
            used = self.dev[k][d] * sc if d is not None else 0.0
            value += math.log((used + share) / (n_k + DEVICE_BACKOFF))
            row = self.cat[k]
            denominator = math.log(self.cat_total[k] * sc + CATEGORY_SMOOTHING * v_plus_one)
            for i, count in hits:
                numerator = (row[i] * sc if i is not None else 0.0) + CATEGORY_SMOOTHING
                value += count * (math.log(numerator) - denominator)
            out.append(value)
        return out

    def log_novel(self, f: SessionFeatures, own: float, theirs: Collection[str]) -> float:
        """log p(session) for someone the model does not have yet.

        The hour, weekend and categories are log_joint's formulas for a member with no history:
        the prior's hour Gaussian (centred and round: every hour alike), even odds of a weekend,
        every category alike. The browser is where a newcomer differs: with probability `own`
        the session is on a browser of theirs (one the account never saw, or one of `theirs`),
        otherwise on one of the account's browsers, as often as the account uses it.
        """
        d = self._device_index.get(f.device)
        if d is None or f.device in theirs:
            device = math.log(own)
        else:
            used = sum(row[d] for row in self.dev) / sum(self.n)
            device = math.log((1.0 - own) * max(used, 1e-12))
        new_categories = sum(1 for name, _ in f.categories if name not in self._category_index)
        v_plus_one = len(self.categories) + new_categories + 1
        hits = sum(count for _, count in f.categories)
        return NOVEL_HOUR - math.log(2.0) + device - hits * math.log(v_plus_one)

    def logits(self, f: SessionFeatures) -> np.ndarray:
        """Uncalibrated log posterior weights of the members for one session (max is 0)."""
        joint = np.array(self.log_joint(f))
        centred: np.ndarray = joint - joint.max()
        return centred

    def update(self, f: SessionFeatures) -> tuple[list[float], float]:
        """Online EM step for one finished session: its responsibilities and log-likelihood."""
        loglik, resp = self.posterior(f)
        self.learn(f, resp)
        return resp, loglik

    def posterior(self, f: SessionFeatures) -> tuple[float, list[float]]:
        """log p(session) under the mixture, and each member's responsibility for it."""
        joint = self.log_joint(f)
        top = max(joint)
        loglik = top + math.log(sum(math.exp(j - top) for j in joint))
        return loglik, [math.exp(j - loglik) for j in joint]

    def learn(self, f: SessionFeatures, resp: Sequence[float]) -> None:
        """Fade the statistics by DECAY and add the session, weighted by `resp` per member.

        Responsibilities may sum to less than one: the rest is someone the model does not have
        yet, and is not learnt into the members.
        """
        self.learn_vocabulary([f])
        self.scale *= DECAY
        if self.scale < RESCALE_BELOW:
            self._rescale()
        inv = 1.0 / self.scale
        x, y = f.hour_sin, f.hour_cos
        w = 1 if f.weekend else 0
        t = DEVICE_TYPES.index(f.device_type)
        d = self._device_index[f.device]
        hits = [(self._category_index[name], count) for name, count in f.categories]
        hit_total = sum(count for _, count in hits)
        for k, r in enumerate(resp):
            amount = r * inv
            self.n[k] += amount
            self.s1[k][0] += amount * x
            self.s1[k][1] += amount * y
            self.s2[k][0] += amount * x * x
            self.s2[k][1] += amount * x * y
            self.s2[k][2] += amount * y * y
            self.weekend[k][w] += amount
            self.types[k][t] += amount
            self.dev[k][d] += amount
            row = self.cat[k]
            for i, count in hits:
                row[i] += amount * count
            self.cat_total[k] += amount * hit_total
        self.sessions_seen += 1

    def learn_vocabulary(self, sessions: Sequence[SessionFeatures]) -> None:
        """Add the devices and categories these sessions use (with no statistics yet)."""
        for f in sessions:
            if f.device not in self._device_index:
                self._device_index[f.device] = len(self.devices)
                self.devices.append(f.device)
                t = DEVICE_TYPES.index(f.device_type)
                self.device_types.append(t)
                self._per_type[t] += 1
                for row in self.dev:
                    row.append(0.0)
            for name, _ in f.categories:
                if name not in self._category_index:
                    self._category_index[name] = len(self.categories)
                    self.categories.append(name)
                    for row in self.cat:
                        row.append(0.0)

    def _rescale(self) -> None:
        sc = self.scale
        self.n = [v * sc for v in self.n]
        self.cat_total = [v * sc for v in self.cat_total]
        for table in (self.s1, self.s2, self.weekend, self.types, self.dev, self.cat):
            for row in table:
                row[:] = [v * sc for v in row]
        self.scale = 1.0

    # -- as arrays (batch EM, profiles) -----------------------------------------------------

    def stats(self) -> Stats:
        k = len(self.n)

        def table(rows: list[list[float]], width: int) -> np.ndarray:
            return np.array(rows, dtype=float).reshape(k, width)

        stats = stats_table(
            np.array(self.n, dtype=float),
            table(self.s1, 2),
            table(self.s2, 3),
            table(self.weekend, 2),
            table(self.dev, len(self.devices)),
            table(self.cat, len(self.categories)),
            table(self.types, len(DEVICE_TYPES)),
        )
        stats.table[:] *= self.scale
        return stats

    def encode(self, sessions: Sequence[SessionFeatures]) -> Encoded:
        """Sessions as rows over this model's vocabulary (learn it first)."""
        return encode(sessions, self.devices, self.categories, self.device_types)

    def with_stats(
        self, stats: Stats, member_ids: list[int], next_member_id: int
    ) -> HouseholdModel:
        """A model over the same vocabulary with these members."""
        return HouseholdModel(
            devices=list(self.devices),
            device_types=list(self.device_types),
            categories=list(self.categories),
            member_ids=list(member_ids),
            next_member_id=next_member_id,
            n=stats.n.tolist(),
            s1=stats.s1.tolist(),
            s2=stats.s2.tolist(),
            weekend=stats.weekend.tolist(),
            types=stats.types.tolist(),
            dev=stats.devices.tolist(),
            cat=stats.categories.tolist(),
            cat_total=stats.categories.sum(axis=1).tolist(),
            sessions_seen=self.sessions_seen,
        )

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "device_types": self.device_types,
            "categories": self.categories,
            "member_ids": self.member_ids,
            "next_member_id": self.next_member_id,
            "n": self.n,
            "s1": self.s1,
            "s2": self.s2,
            "weekend": self.weekend,
            "types": self.types,
            "dev": self.dev,
            "cat": self.cat,
            "cat_total": self.cat_total,
            "scale": self.scale,
            "sessions_seen": self.sessions_seen,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HouseholdModel:
        return cls(**raw)
