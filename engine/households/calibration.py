"""Calibration of member probabilities, fitted on simulated households with known members.

Two things make the mixture's raw posteriors overconfident. It multiplies several pieces of
evidence as if independent: one temperature T softens that, p = softmax(logits / T). And it can
be wrong about how many people there are: an account still modelled as one member says "100%
member 1" even when two people share it. So the top member's tempered probability is mapped
through an isotonic curve (accounts with several members) or set to the measured share of correct
one-member attributions (accounts with one), which grows with the sessions the account has
shown: early on one member is all a model can say, later it is mostly the truth. The remainder
is left to "someone not yet told apart" rather than forced onto the members. `bond simulate
--calibrate` fits all of it (calibration_fit.py) and writes calibration.json beside this module;
it ships with the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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

    def attribute(
        self, logits: np.ndarray, sessions_seen: int, member_ids: Sequence[int]
    ) -> tuple[int, float, dict[int, float]]:
        """The member an order goes to, with its probability, and every member's."""
        probs = self.probabilities(logits, sessions_seen)
        best = int(np.argmax(probs))
        each = {m: float(p) for m, p in zip(member_ids, probs, strict=True)}
        return member_ids[best], float(probs[best]), each


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
