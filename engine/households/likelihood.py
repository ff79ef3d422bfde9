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
    """Sessions as arrays over a fixed device and category vocabulary."""

    x: np.ndarray  # (n, 2) sin, cos
    x2: np.ndarray  # (n, 3) sin², sin·cos, cos²
    weekend: np.ndarray  # (n, 2) one-hot
    types: np.ndarray  # (n, 3) one-hot
    devices: np.ndarray  # (n, D) one-hot
    categories: np.ndarray  # (n, V) hits

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


def encode(
    sessions: Sequence[SessionFeatures], devices: Sequence[str], categories: Sequence[str]
) -> Encoded:
    """Sessions over the vocabulary (every device and category they use must be in it)."""
    n = len(sessions)
    dev_index = {d: i for i, d in enumerate(devices)}
    cat_index = {c: i for i, c in enumerate(categories)}
    x = np.array([(f.hour_sin, f.hour_cos) for f in sessions], dtype=float).reshape(n, 2)
    weekend = np.zeros((n, 2))
    weekend[np.arange(n), [int(f.weekend) for f in sessions]] = 1.0
    types = np.zeros((n, len(DEVICE_TYPES)))
    types[np.arange(n), [DEVICE_TYPES.index(f.device_type) for f in sessions]] = 1.0
    one_hot = np.zeros((n, len(devices)))
    one_hot[np.arange(n), [dev_index[f.device] for f in sessions]] = 1.0
    hits = np.zeros((n, len(categories)))
    for i, f in enumerate(sessions):
        for name, count in f.categories:
            hits[i, cat_index[name]] = count
    x2 = np.stack([x[:, 0] ** 2, x[:, 0] * x[:, 1], x[:, 1] ** 2], axis=1)
    return Encoded(x, x2, weekend, types, one_hot, hits)


def stats_of(data: Encoded, resp: np.ndarray) -> Stats:
    """Sufficient statistics of sessions weighted by `resp` (n, K)."""
    t = resp.T
    return Stats(
        resp.sum(axis=0),
        t @ data.x,
        t @ data.x2,
        t @ data.weekend,
        t @ data.types,
        t @ data.devices,
        t @ data.categories,
    )


def joint(stats: Stats, device_types: Sequence[int], data: Encoded) -> np.ndarray:
    """log p(session, member k) for each session and member: shape (n, K)."""
    n_k = stats.n
    k = stats.k
    log_weight = np.log((n_k + WEIGHT_FLOOR) / (n_k.sum() + WEIGHT_FLOOR * k))
    out: np.ndarray = log_weight[None, :] + HOUR_WEIGHT * _hour(stats, data)
    out += data.weekend @ np.log((stats.weekend + 1.0) / (n_k[:, None] + 2.0)).T
    type_p = (stats.types + 1.0) / (n_k[:, None] + len(DEVICE_TYPES))
    type_of = np.asarray(device_types, dtype=int)
    per_type = np.bincount(type_of, minlength=len(DEVICE_TYPES)) + 1.0
    share = DEVICE_BACKOFF * type_p[:, type_of] / per_type[type_of][None, :]
    out += data.devices @ np.log((stats.devices + share) / (n_k[:, None] + DEVICE_BACKOFF)).T
    v = stats.categories.shape[1]
    theta = (stats.categories + CATEGORY_SMOOTHING) / (
        stats.categories.sum(axis=1, keepdims=True) + CATEGORY_SMOOTHING * (v + 1)
    )
    out += data.categories @ np.log(theta).T
    return out


def _hour(stats: Stats, data: Encoded) -> np.ndarray:
    n_k = stats.n
    safe = np.maximum(n_k, 1e-12)
    mx, my = stats.s1[:, 0] / safe, stats.s1[:, 1] / safe
    prior = PRIOR_STRENGTH * PRIOR_VARIANCE
    scale = n_k + PRIOR_STRENGTH
    a = (stats.s2[:, 0] - n_k * mx * mx + prior) / scale + HOUR_NOISE
    b = (stats.s2[:, 1] - n_k * mx * my) / scale
    c = (stats.s2[:, 2] - n_k * my * my + prior) / scale + HOUR_NOISE
    det = a * c - b * b
    dx = data.x[:, 0:1] - mx[None, :]
    dy = data.x[:, 1:2] - my[None, :]
    maha = (c * dx * dx - 2 * b * dx * dy + a * dy * dy) / det
    result: np.ndarray = -0.5 * (2 * LOG_2PI + np.log(det)[None, :] + maha)
    return result


def posterior(log_joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n, K) and each session's log-likelihood (n,)."""
    per_session = np.logaddexp.reduce(log_joint, axis=1)
    return np.exp(log_joint - per_session[:, None]), per_session
