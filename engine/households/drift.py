"""Household change detection: Page-Hinkley on per-session surprise, confirmed by a second test.

When a member joins or leaves, sessions stop looking like the mixture: their negative
log-likelihood under the current model rises. Page-Hinkley watches that stream for a sustained
upward shift. An alarm alone is cheap and can be noise, so it is confirmed on fresh evidence: the
next CONFIRM_WINDOW sessions must be more surprising than the reference sessions before the
estimated change point (one-sided Mann-Whitney). Testing the very sessions that raised the alarm
would be biased: the change point is chosen where they look worst. Only a confirmed change is
recorded and triggers a refit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from scipy.stats import mannwhitneyu

WARMUP = 20  # sessions after a (re)fit before alarms are believed: the model is still settling
DELTA = 0.3  # tolerated drift, in standard deviations of the surprise
THRESHOLD = 8.0  # alarm when the cumulative excess reaches this many standard deviations
CONFIRM_WINDOW = 8
MIN_REFERENCE = 10
REFERENCE = 60
CONFIRM_P = 0.01


class Drift(NamedTuple):
    change_at: int  # the session count where the change began
    p_value: float


@dataclass
class PageHinkley:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    cumulative: float = 0.0
    minimum: float = 0.0
    argmin: int = 0
    suspect: int | None = None  # change point of an alarm awaiting confirmation
    alarm_at: int = 0
    history: list[float] = field(default_factory=list)

    def add(self, surprise: float) -> Drift | None:
        """Feed one session's negative log-likelihood; returns a confirmed change."""
        self.history.append(surprise)
        del self.history[: -(REFERENCE + 64)]
        self.count += 1
        if self.suspect is not None:
            return self._confirm(self.suspect)
        delta = surprise - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (surprise - self.mean)
        if self.count < WARMUP:
            return None
        std = math.sqrt(self.m2 / (self.count - 1)) or 1.0
        self.cumulative += (surprise - self.mean) / std - DELTA
        if self.cumulative < self.minimum:
            self.minimum = self.cumulative
            self.argmin = self.count
        if self.cumulative - self.minimum > THRESHOLD:
            self.suspect, self.alarm_at = self.argmin, self.count
        return None

    def _confirm(self, change_at: int) -> Drift | None:
        fresh = self.count - self.alarm_at
        if fresh < CONFIRM_WINDOW:
            return None
        before = self.count - change_at
        reference = self.history[-before - REFERENCE : -before]
        self.suspect = None
        self.cumulative = self.minimum = 0.0
        self.argmin = self.count
        if len(reference) < MIN_REFERENCE:
            return None
        window = self.history[-fresh:]
        p_value = float(mannwhitneyu(window, reference, alternative="greater").pvalue)
        return Drift(change_at, p_value) if p_value < CONFIRM_P else None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PageHinkley:
        return cls(**raw)
