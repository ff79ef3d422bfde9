"""Calibration of member probabilities, fitted on simulated households with known members.

Two things make the mixture's raw posteriors overconfident. It multiplies several pieces of
evidence as if independent: one temperature T softens that, p = softmax(logits / T). And it can
be wrong about how many people there are: an account still modelled as one member says "100%
member 1" even when two people share it. So the top member's tempered probability is mapped
through an isotonic curve (accounts with several members) or set to the measured share of correct
one-member attributions (accounts with one), which grows with the sessions the account has
shown: early on one member is all a model can say, later it is mostly the truth. The remainder
is left to "someone not yet told apart" rather than forced onto the members. `bond simulate
--calibrate` fits all of it and writes calibration.json beside this module; it ships with the
model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from bond.errors import ConfigError

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    # How often a one-member account's attribution is right, by the sessions it has shown.
    single_x: tuple[float, ...] = (0.0,)
    single_y: tuple[float, ...] = (1.0,)
    curve_x: tuple[float, ...] = (0.0, 1.0)
    curve_y: tuple[float, ...] = (0.0, 1.0)
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def tempered(self, logits: np.ndarray) -> np.ndarray:
        scaled = logits / self.temperature
        weights = np.exp(scaled - scaled.max())
        out: np.ndarray = weights / weights.sum()
        return out

    def probabilities(self, logits: np.ndarray, sessions_seen: int) -> np.ndarray:
        """Calibrated member probabilities; they may sum to less than 1 (the unexplained rest)."""
        if logits.size == 1:
            return np.array([np.interp(sessions_seen, self.single_x, self.single_y)])
        p = self.tempered(logits)
        top = int(np.argmax(p))
        calibrated = float(np.interp(p[top], self.curve_x, self.curve_y))
        rest = 1.0 - p[top]
        out = p * ((1.0 - calibrated) / rest) if rest > 1e-12 else np.zeros_like(p)
        out[top] = calibrated
        return out


def fit(
    logits: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    sessions_seen: Sequence[int],
    fitted_on: dict[str, Any],
) -> Calibration:
    """Temperature, then the isotonic curve of the top member, then the one-member rate."""
    temperature = fit_temperature(logits, correct)
    base = Calibration(temperature)
    tops, hits, seen, singles = [], [], [], []
    for lg, ok, n in zip(logits, correct, sessions_seen, strict=True):
        if lg.size == 1:
            seen.append(float(n))
            singles.append(float(ok[0]))
            continue
        p = base.tempered(lg)
        tops.append(float(p.max()))
        hits.append(float(ok[int(np.argmax(p))]))
    curve_x, curve_y = _isotonic(tops, hits, (0.0, 1.0), (0.0, 1.0))
    single_x, single_y = _isotonic(seen, singles, (0.0,), (1.0,))
    return Calibration(round(temperature, 4), single_x, single_y, curve_x, curve_y, fitted_on)


def _isotonic(
    x: Sequence[float],
    y: Sequence[float],
    default_x: tuple[float, ...],
    default_y: tuple[float, ...],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """An increasing step curve through (x, y), as the points np.interp needs."""
    if len(x) < 10:
        return default_x, default_y
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return (
        tuple(round(float(v), 5) for v in iso.X_thresholds_),
        tuple(round(float(v), 5) for v in iso.y_thresholds_),
    )


def fit_temperature(logits: Sequence[np.ndarray], correct: Sequence[np.ndarray]) -> float:
    """The temperature minimising the negative log-likelihood of the true member.

    `correct[i]` marks the members of attribution i that map to the true purchaser (several
    model members may map to one person).
    """
    pairs = [(lg, ok) for lg, ok in zip(logits, correct, strict=True) if lg.size > 1]
    if not pairs:
        return 1.0

    def nll(temperature: float) -> float:
        total = 0.0
        for lg, ok in pairs:
            scaled = lg / temperature
            norm = np.logaddexp.reduce(scaled)
            hit = np.logaddexp.reduce(scaled[ok]) if ok.any() else norm - 50.0
            total -= float(hit - norm)
        return total

    result = minimize_scalar(nll, bounds=(0.2, 50.0), method="bounded")
    return float(result.x)


def load(path: Path = CALIBRATION_FILE) -> Calibration:
    if not path.exists():
        return Calibration()
    try:
        raw = json.loads(path.read_text())
        return Calibration(
            float(raw["temperature"]),
            tuple(raw["single_x"]),
            tuple(raw["single_y"]),
            tuple(raw["curve_x"]),
            tuple(raw["curve_y"]),
            dict(raw.get("fitted_on", {})),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read household calibration {path}: {exc}") from exc


def save(calibration: Calibration, path: Path = CALIBRATION_FILE) -> None:
    path.write_text(json.dumps(asdict(calibration), indent=2, sort_keys=True) + "\n")
