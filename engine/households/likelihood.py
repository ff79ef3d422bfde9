"""The member mixture's likelihood over many sessions at once (batch EM, relabelling, tests).

A member is a mixture component over a session's features: a full-covariance Gaussian on the
hour of day (a point on the unit circle) times categorical factors for weekday/weekend, the
device (backed off to the member's device type for a browser it never used) and the product
categories. Binary and one-hot features inside the Gaussian would make its covariance singular:
a cluster of only-weekday sessions gets a needle-thin density there, and EM then splits accounts
by weekday instead of by person. So discrete evidence is scored as what it is.

Sessions are one matrix row each (`Encoded`), laid out so that both halves of an EM step are one
matrix product: a member's sufficient statistics are the responsibility-weighted column sums,
and every factor's log-density, hour included, is linear in the same columns (the hour as
x², xy, y², x, y, 1 for its point (x, y)). At most a few members and a few dozen columns make
numpy's per-call overhead, not arithmetic, the cost, so each step is a handful of calls.

`HouseholdModel.log_joint` (model.py) is the same formula for one session in plain Python, the
per-session path; a test holds the two to the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

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

# A member with no sessions has the prior's hour Gaussian: centred and round, so every hour (a
# point at distance 1 from the centre) has this one log-density under it.
_ROUND = PRIOR_VARIANCE + HOUR_NOISE
NOVEL_HOUR = -0.5 * HOUR_WEIGHT * (2 * LOG_2PI + 2 * math.log(_ROUND) + 1 / _ROUND)

HOUR = 6  # x², xy, y², x, y, 1
WEEKEND = HOUR  # then weekday, weekend
DEVICES = WEEKEND + 2  # then one column per device, one per category, one per device type


@dataclass(frozen=True)
class Stats:
    """Decayed sufficient statistics, one row per member (the model's state, as arrays).

    `table` holds them side by side in the column layout of `Encoded.matrix`.
    """

    table: np.ndarray  # (K, 8 + D + V + 3)
    devices_known: int  # D

    @property
    def k(self) -> int:
        return int(self.table.shape[0])

    @property
    def n(self) -> np.ndarray:  # (K,) sessions
        return self.table[:, 5]

    @property
    def s1(self) -> np.ndarray:  # (K, 2) sums of (sin, cos) of the hour
        return self.table[:, 3:5]

    @property
    def s2(self) -> np.ndarray:  # (K, 3) sums of sin², sin·cos, cos²
        return self.table[:, 0:3]

    @property
    def weekend(self) -> np.ndarray:  # (K, 2) weekday, weekend
        return self.table[:, WEEKEND : WEEKEND + 2]

    @property
    def devices(self) -> np.ndarray:  # (K, D)
        return self.table[:, DEVICES : DEVICES + self.devices_known]

    @property
    def categories(self) -> np.ndarray:  # (K, V) category hits
        return self.table[:, DEVICES + self.devices_known : -len(DEVICE_TYPES)]

    @property
    def types(self) -> np.ndarray:  # (K, 3) device types
        return self.table[:, -len(DEVICE_TYPES) :]


def stats_table(
    n: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    weekend: np.ndarray,
    devices: np.ndarray,
    categories: np.ndarray,
    types: np.ndarray,
) -> Stats:
    """Statistics from their parts (each with one row per member)."""
    table = np.hstack([s2, s1, n[:, None], weekend, devices, categories, types])
    return Stats(table, int(devices.shape[1]))


@dataclass(frozen=True)
class Encoded:
    """Sessions as rows over a fixed device and category vocabulary (see `Stats.table`)."""

    matrix: np.ndarray  # (n, 8 + D + V + 3)
    devices_known: int  # D
    device_types: tuple[int, ...]  # each known device's type

    @property
    def size(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def scored(self) -> np.ndarray:
        """The columns a log-density is linear in (all but the device types)."""
        return self.matrix[:, : -len(DEVICE_TYPES)]

    @property
    def x(self) -> np.ndarray:
        return self.matrix[:, 3:5]

    @property
    def devices(self) -> np.ndarray:
        return self.matrix[:, DEVICES : DEVICES + self.devices_known]

    @property
    def categories(self) -> np.ndarray:
        return self.matrix[:, DEVICES + self.devices_known : -len(DEVICE_TYPES)]

    @cached_property
    def constants(self) -> _Constants:
        return _constants(self.devices_known, self.categories_known, self.device_types)

    @property
    def categories_known(self) -> int:
        return int(self.matrix.shape[1]) - DEVICES - self.devices_known - len(DEVICE_TYPES)


def encode(
    sessions: Sequence[SessionFeatures],
    devices: Sequence[str],
    categories: Sequence[str],
    device_types: Sequence[int],
) -> Encoded:
    """Sessions over the vocabulary (every device and category they use must be in it)."""
    n = len(sessions)
    d = len(devices)
    v = len(categories)
    dev_index = {name: DEVICES + i for i, name in enumerate(devices)}
    cat_index = {name: DEVICES + d + i for i, name in enumerate(categories)}
    matrix = np.zeros((n, DEVICES + d + v + len(DEVICE_TYPES)))
    x = np.array([f.hour_sin for f in sessions], dtype=float)
    y = np.array([f.hour_cos for f in sessions], dtype=float)
    matrix[:, 0] = x * x
    matrix[:, 1] = x * y
    matrix[:, 2] = y * y
    matrix[:, 3] = x
    matrix[:, 4] = y
    matrix[:, 5] = 1.0
    rows = np.arange(n)
    matrix[rows, [WEEKEND + int(f.weekend) for f in sessions]] = 1.0
    matrix[rows, [dev_index[f.device] for f in sessions]] = 1.0
    type_column = DEVICES + d + v
    matrix[rows, [type_column + DEVICE_TYPES.index(f.device_type) for f in sessions]] = 1.0
    for i, f in enumerate(sessions):
        for name, count in f.categories:
            matrix[i, cat_index[name]] = count
    return Encoded(matrix, d, tuple(device_types))


def stats_of(data: Encoded, resp: np.ndarray) -> Stats:
    """Sufficient statistics of sessions weighted by `resp` (n, K)."""
    return Stats(resp.T @ data.matrix, data.devices_known)


def coefficients(stats: Stats, data: Encoded) -> np.ndarray:
    """Each member's log p(session, member) as coefficients on the scored columns: (K, 8+D+V)."""
    table = stats.table
    k = table.shape[0]
    c = data.constants
    n_k = table[:, 5]
    out = np.empty((k, c.scored))
    out[:, :HOUR] = _hour(table[:, :HOUR].tolist())
    out[:, 5] += np.log((n_k + WEIGHT_FLOOR) / (n_k.sum() + WEIGHT_FLOOR * k))
    numerators = table[:, WEEKEND : c.scored] + c.smoothing
    numerators[:, c.devices] += (table @ c.type_of_device + c.backoff) / (n_k + len(DEVICE_TYPES))[
        :, None
    ]
    out[:, WEEKEND:] = np.log(numerators / (table @ c.denominators + c.denominator_floor))
    return out


@dataclass(frozen=True)
class _Constants:
    """What `coefficients` needs of a vocabulary, as matrices, so a step is a few calls.

    Every factor is (count + smoothing) / (the member's total + its smoothing); the counts and
    the totals are both linear in the statistics table, so both are one product with it.
    """

    scored: int
    devices: slice  # the device columns among the factors' columns
    smoothing: np.ndarray  # (2 + D + V,) added to each count (devices: see type_of_device)
    # (F, D): picks each device's type column, so that (table @ it + backoff) / (n + 3) is the
    # member's device-type backoff share for each device.
    type_of_device: np.ndarray
    backoff: np.ndarray  # (D,) the backoff pseudo-count split among browsers of the type
    denominators: np.ndarray  # (F, 2 + D + V): each factor column's total, from the table
    denominator_floor: np.ndarray  # (2 + D + V,)


def _constants(devices: int, categories: int, device_types: Sequence[int]) -> _Constants:
    scored = DEVICES + devices + categories
    width = scored + len(DEVICE_TYPES)
    factors = scored - WEEKEND
    device_columns = slice(2, 2 + devices)
    smoothing = np.zeros(factors)
    smoothing[:2] = 1.0
    smoothing[2 + devices :] = CATEGORY_SMOOTHING
    type_of = np.asarray(device_types, dtype=int)
    per_type = np.bincount(type_of, minlength=len(DEVICE_TYPES)) + 1.0
    type_of_device = np.zeros((width, devices))
    type_of_device[scored + type_of, np.arange(devices)] = 1.0
    share = DEVICE_BACKOFF / per_type[type_of]
    type_of_device *= share
    denominators = np.zeros((width, factors))
    denominators[5, : 2 + devices] = 1.0  # weekend and devices: out of the member's sessions
    denominators[DEVICES + devices : scored, 2 + devices :] = 1.0  # categories: of its hits
    floor = np.zeros(factors)
    floor[:2] = 2.0
    floor[device_columns] = DEVICE_BACKOFF
    # One smoothing term more than categories: the slot of a category nobody has shown yet.
    floor[2 + devices :] = CATEGORY_SMOOTHING * (categories + 1)
    return _Constants(scored, device_columns, smoothing, type_of_device, share, denominators, floor)


def joint(stats: Stats, data: Encoded) -> np.ndarray:
    """log p(session, member k) for each session and member: shape (n, K)."""
    result: np.ndarray = data.scored @ coefficients(stats, data).T
    return result


def _hour(rows: list[list[float]]) -> list[list[float]]:
    """Each member's weighted hour log-density as coefficients on x², xy, y², x, y, 1.

    From the member's sums of x², xy, y², x, y and its weight; a few members, so plain floats.
    """
    prior = PRIOR_STRENGTH * PRIOR_VARIANCE
    out = []
    for sxx, sxy, syy, sx, sy, n_k in rows:
        safe = max(n_k, 1e-12)
        mx, my = sx / safe, sy / safe
        spread = n_k + PRIOR_STRENGTH
        a = (sxx - n_k * mx * mx + prior) / spread + HOUR_NOISE
        b = (sxy - n_k * mx * my) / spread
        c = (syy - n_k * my * my + prior) / spread + HOUR_NOISE
        det = a * c - b * b
        # -w/2 [(p - m)' Σ⁻¹ (p - m) + log det + 2 log 2π], expanded in x and y.
        h = -0.5 * HOUR_WEIGHT / det
        out.append(
            [
                h * c,
                h * -2 * b,
                h * a,
                h * -2 * (c * mx - b * my),
                h * -2 * (a * my - b * mx),
                h * (c * mx * mx - 2 * b * mx * my + a * my * my)
                - 0.5 * HOUR_WEIGHT * (2 * LOG_2PI + math.log(det)),
            ]
        )
    return out


def posterior(log_joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n, K) and each session's log-likelihood (n,)."""
    top = log_joint.max(axis=1, keepdims=True)
    weights = np.exp(log_joint - top)
    total = weights.sum(axis=1, keepdims=True)
    weights /= total
    per_session: np.ndarray = (np.log(total) + top)[:, 0]
    return weights, per_session
