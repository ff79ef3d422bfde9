"""Fitting the calibration (see calibration.py) to simulated households with known members.

Apart from applying it because fitting needs SciPy's optimiser and scikit-learn's isotonic
regression, which take a second and a half to import: the worker and the read API, which only
apply a fitted calibration, start without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from engine.households.calibration import Calibration


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
