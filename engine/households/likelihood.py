"""The member mixture's likelihood over many sessions at once (batch EM, relabelling, tests).

A member is a mixture component over a session's features: a full-covariance Gaussian on the
hour of day (a point on the unit circle) times categorical factors for weekday/weekend, the
device (backed off to the member's device type for a browser it never used) and the product
categories. Binary and one-hot features inside the Gaussian would make its covariance singular:
a cluster of only-weekday sessions gets a needle-thin density there, and EM then splits accounts
by weekday instead of by person. So discrete evidence is scored as what it is.

`HouseholdModel.log_joint` (model.py) is the same formula for one session in plain Python, the
per-session path; a test holds the two to the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.households.features import DEVICE_TYPES, SessionFeatures

# The hour evidence counts half: a person's day has several peaks (lunch, evening) and a single
# Gaussian per member would otherwise rather split one person's lunch from their evening than
# split two people.
HOUR_WEIGHT = 0.5
# A prior covariance pulls a member with few sessions toward "spread over the day" instead of
# letting two sessions at 20:00 make a needle that rejects everyone else.
PRIOR_VARIANCE = 0.25
PRIOR_STRENGTH = 2.0
# Hours lie on the unit circle, so a member's covariance can collapse across it (radially) and
# give a few sessions a needle-sharp density; this floor keeps it about an hour wide.
HOUR_NOISE = 0.2
DEVICE_BACKOFF = 2.0  # pseudo-sessions by which a member's device type speaks for a new browser
CATEGORY_SMOOTHING = 0.5
WEIGHT_FLOOR = 1e-3
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Stats:
    """Decayed sufficient statistics, one row per member (the model's state, as arrays)."""

    n: np.ndarray  # (K,) sessions
    s1: np.ndarray  # (K, 2) sums of (sin, cos) of the hour
    s2: np.ndarray  # (K, 3) sums of sin², sin·cos, cos²
    weekend: np.ndarray  # (K, 2) weekday, weekend
    types: np.ndarray  # (K, 3) device types
    devices: np.ndarray  # (K, D)
    categories: np.ndarray  # (K, V) category hits

    @property
    def k(self) -> int:
        return int(self.n.shape[0])


@dataclass(frozen=True)
class Encoded:
    """Sessions as arrays over a fixed device and category vocabulary.

    `quadratic` holds each session's hour as x², xy, y², x, y, 1 ((x, y) on the circle), so a
    Gaussian's log-density is one product with its coefficients; `discrete` holds the weekend
    one-hot, the device one-hot and the category hits side by side, so all categorical factors
    are one product with their log-probabilities.
    """

    quadratic: np.ndarray  # (n, 6)
    discrete: np.ndarray  # (n, 2 + D + V)
    types: np.ndarray  # (n, 3) one-hot
    devices_known: int  # D

    @property
    def size(self) -> int:
        return int(self.quadratic.shape[0])

    @property
    def x(self) -> np.ndarray:
        return self.quadratic[:, 3:5]

    @property
    def devices(self) -> np.ndarray:
        return self.discrete[:, 2 : 2 + self.devices_known]

    @property
    def categories(self) -> np.ndarray:
        return self.discrete[:, 2 + self.devices_known :]


def encode(
    sessions: Sequence[SessionFeatures], devices: Sequence[str], categories: Sequence[str]
) -> Encoded:
    """Sessions over the vocabulary (every device and category they use must be in it)."""
    n = len(sessions)
    d = len(devices)
    dev_index = {name: 2 + i for i, name in enumerate(devices)}
    cat_index = {name: 2 + d + i for i, name in enumerate(categories)}
    x = np.array([f.hour_sin for f in sessions], dtype=float)
    y = np.array([f.hour_cos for f in sessions], dtype=float)
    quadratic = np.stack([x * x, x * y, y * y, x, y, np.ones(n)], axis=1).reshape(n, 6)
    discrete = np.zeros((n, 2 + d + len(categories)))
    rows = np.arange(n)
    discrete[rows, [int(f.weekend) for f in sessions]] = 1.0
    discrete[rows, [dev_index[f.device] for f in sessions]] = 1.0
    for i, f in enumerate(sessions):
        for name, count in f.categories:
            discrete[i, cat_index[name]] = count
    types = np.zeros((n, len(DEVICE_TYPES)))
    types[rows, [DEVICE_TYPES.index(f.device_type) for f in sessions]] = 1.0
    return Encoded(quadratic, discrete, types, d)


def stats_of(data: Encoded, resp: np.ndarray) -> Stats:
    """Sufficient statistics of sessions weighted by `resp` (n, K)."""
    t = resp.T
    hour = t @ data.quadratic
    discrete = t @ data.discrete
    d = data.devices_known
    return Stats(
        hour[:, 5],
        hour[:, 3:5],
        hour[:, 0:3],
        discrete[:, 0:2],
        t @ data.types,
        discrete[:, 2 : 2 + d],
        discrete[:, 2 + d :],
    )


def joint(stats: Stats, device_types: Sequence[int], data: Encoded) -> np.ndarray:
    """log p(session, member k) for each session and member: shape (n, K)."""
    n_k = stats.n
    k = stats.k
    log_weight = np.log((n_k + WEIGHT_FLOOR) / (n_k.sum() + WEIGHT_FLOOR * k))
    hour = _hour(stats)
    hour[:, 5] += log_weight
    type_p = (stats.types + 1.0) / (n_k[:, None] + len(DEVICE_TYPES))
    type_of = np.asarray(device_types, dtype=int)
    per_type = np.bincount(type_of, minlength=len(DEVICE_TYPES)) + 1.0
    share = DEVICE_BACKOFF * type_p[:, type_of] / per_type[type_of][None, :]
    v = stats.categories.shape[1]
    logs = np.log(
        np.hstack(
            [
                (stats.weekend + 1.0) / (n_k[:, None] + 2.0),
                (stats.devices + share) / (n_k[:, None] + DEVICE_BACKOFF),
                (stats.categories + CATEGORY_SMOOTHING)
                / (stats.categories.sum(axis=1, keepdims=True) + CATEGORY_SMOOTHING * (v + 1)),
            ]
        )
    )
    result: np.ndarray = data.quadratic @ hour.T + data.discrete @ logs.T
    return result


def _hour(stats: Stats) -> np.ndarray:
    """Each member's weighted hour log-density as coefficients on x², xy, y², x, y, 1."""
    n_k = stats.n
    safe = np.maximum(n_k, 1e-12)
    mx, my = stats.s1[:, 0] / safe, stats.s1[:, 1] / safe
    prior = PRIOR_STRENGTH * PRIOR_VARIANCE
    spread = n_k + PRIOR_STRENGTH
    a = (stats.s2[:, 0] - n_k * mx * mx + prior) / spread + HOUR_NOISE
    b = (stats.s2[:, 1] - n_k * mx * my) / spread
    c = (stats.s2[:, 2] - n_k * my * my + prior) / spread + HOUR_NOISE
    det = a * c - b * b
    # (p - m)' Σ⁻¹ (p - m) = (c dx² - 2b dx dy + a dy²) / det, expanded in x and y.
    quadratic = (
        np.stack(
            [
                c,
                -2 * b,
                a,
                -2 * (c * mx - b * my),
                -2 * (a * my - b * mx),
                c * mx * mx - 2 * b * mx * my + a * my * my,
            ],
            axis=1,
        )
        / det[:, None]
    )
    coefficients: np.ndarray = -0.5 * HOUR_WEIGHT * quadratic
    coefficients[:, 5] -= 0.5 * HOUR_WEIGHT * (2 * LOG_2PI + np.log(det))
    return coefficients


def posterior(log_joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n, K) and each session's log-likelihood (n,)."""
    per_session = np.logaddexp.reduce(log_joint, axis=1)
    return np.exp(log_joint - per_session[:, None]), per_session
