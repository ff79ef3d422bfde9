"""Household change detection: someone joins or leaves the account.

A join shows in the stream as sessions the current mixture explains badly. Page-Hinkley watches
each session's surprise (negative log-likelihood under the mixture) for a sustained rise, and
an alarm asks for a refit; the refit, like a scheduled one, may then find a member the model did
not have. Such a member is a join only if two tests agree: it is new (none of its sessions in a
run of earlier sessions long enough that its share makes that improbable) and it was surprising
(its sessions' surprise at the time exceeds that of the sessions before it, one-sided
Mann-Whitney). A refit that merely splits an existing member finds it in earlier sessions too,
so refining the model is not mistaken for a change.

A leave lowers surprise, so the likelihood cannot show it; the member's silence does. A member
that had a share s of the sessions and has been absent from the last g has probability
(1 - s)^g of that by chance; below CHANGE_P it is recorded as gone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from scipy.stats import mannwhitneyu

WARMUP = 20  # sessions after a (re)start before alarms are believed: the model is still settling
DELTA = 0.5  # tolerated drift, in standard deviations of the surprise
THRESHOLD = 10.0  # alarm when the cumulative excess reaches this many standard deviations
CHANGE_P = 1e-3  # how improbable an absence must be to call a member new or gone
SURPRISE_P = 0.01
MIN_SESSIONS = 3  # a member needs this many sessions before its arrival or absence means much
MIN_REFERENCE = 8


class Change(NamedTuple):
    kind: str  # "join" or "leave"
    member: int
    change_at: int  # the account's session count where the change began
    p_value: float


@dataclass
class PageHinkley:
    """Page-Hinkley test for an increase in the mean of a stream (Welford mean and spread)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    cumulative: float = 0.0
    minimum: float = 0.0

    def add(self, surprise: float) -> bool:
        """Feed one session's surprise; True when the rise is sustained (then start over)."""
        self.count += 1
        delta = surprise - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (surprise - self.mean)
        if self.count < WARMUP:
            return False
        std = math.sqrt(self.m2 / (self.count - 1)) or 1.0
        self.cumulative += (surprise - self.mean) / std - DELTA
        self.minimum = min(self.minimum, self.cumulative)
        if self.cumulative - self.minimum > THRESHOLD:
            self.cumulative = self.minimum = 0.0
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PageHinkley:
        return cls(**raw)


@dataclass
class Presence:
    """When each member was last seen, and its share then (for the leave test)."""

    last: dict[int, int] = field(default_factory=dict)  # member -> session count
    share: dict[int, float] = field(default_factory=dict)
    sessions: dict[int, int] = field(default_factory=dict)

    def saw(self, member: int, at: int, share: float) -> None:
        self.found(member, at, share, self.sessions.get(member, 0) + 1)

    def found(self, member: int, at: int, share: float, sessions: int) -> None:
        self.last[member] = at
        self.share[member] = share
        self.sessions[member] = sessions

    def gone(self, now: int) -> list[Change]:
        """Members whose absence since they were last seen is too long to be chance."""
        out = []
        for member, last in list(self.last.items()):
            if self.sessions.get(member, 0) < MIN_SESSIONS:
                continue
            p = absence_p(self.share[member], now - last)
            if p < CHANGE_P:
                out.append(Change("leave", member, last + 1, p))
                self.forget(member)
        return out

    def reshare(self, member: int, share: float) -> None:
        """A refit re-estimated the member's share."""
        if member in self.share:
            self.share[member] = share

    def keep_only(self, members: Sequence[int]) -> None:
        for member in [m for m in self.last if m not in members]:
            self.forget(member)

    def forget(self, member: int) -> None:
        self.last.pop(member, None)
        self.share.pop(member, None)
        self.sessions.pop(member, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": [[m, v] for m, v in self.last.items()],
            "share": [[m, v] for m, v in self.share.items()],
            "sessions": [[m, v] for m, v in self.sessions.items()],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Presence:
        return cls(
            {int(m): int(v) for m, v in raw["last"]},
            {int(m): float(v) for m, v in raw["share"]},
            {int(m): int(v) for m, v in raw["sessions"]},
        )


def absence_p(share: float, sessions: int) -> float:
    """Chance that a member with this share of the sessions has none of the next `sessions`."""
    if share <= 0.0 or sessions <= 0:
        return 1.0
    if share >= 1.0:
        return 0.0
    return math.exp(sessions * math.log1p(-share))


def joined(
    member: int,
    first: int,
    member_sessions: int,
    share: float,
    surprise_before: Sequence[float],
    surprise_member: Sequence[float],
    at: int,
) -> Change | None:
    """A member a refit found: a join when it is new and it was surprising.

    `first` is the window position of its first session, `share` its share of the sessions
    from there on, `surprise_*` the sessions' surprise when they happened (before its first
    session, and its own); `at` is the account's session count at the window's start.
    """
    if member_sessions < MIN_SESSIONS or len(surprise_before) < MIN_REFERENCE:
        return None
    if absence_p(share, first) >= CHANGE_P:
        return None
    p_value = float(mannwhitneyu(surprise_member, surprise_before, alternative="greater").pvalue)
    if p_value >= SURPRISE_P:
        return None
    return Change("join", member, at + first, p_value)
