"""Household change detection: someone joins or leaves the account.

A join shows in the stream as sessions the current mixture explains badly. Page-Hinkley watches
each session's surprise (negative log-likelihood under the mixture) for a sustained rise, and an
alarm asks for a refit; that refit, like any other, may find a member the model did not have.
Such a member is judged on the refit's window (`arrived`): a join if the member is new (a step
up in its sessions, the quiet before it improbable at its rate since) and came with a browser
the account had not used. A member a refit merely split off an existing one was there before,
on browsers seen before, so refining the model is not mistaken for a change.

A leave lowers surprise, so the likelihood cannot show it; the member's silence does. A member
that had a share s of the sessions and has been absent from the last g has probability
(1 - s)^g of that by chance; below GONE_P the stored sessions are judged (`departed`): a step
down in the member's sessions, improbable by chance below LEAVE_P.

Each test is one-sided on the window the model already keeps, so detection costs no extra
fitting; its price is delay: a change is recorded once enough sessions after it make chance
improbable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import beta, binom

WARMUP = 20  # sessions after a (re)start before alarms are believed: the model is still settling
DELTA = 0.5  # tolerated drift, in standard deviations of the surprise
THRESHOLD = 10.0  # alarm when the cumulative excess reaches this many standard deviations
GONE_P = 0.01  # how improbable a member's absence must be to ask a refit whether they left
LEAVE_P = 1e-3  # how improbable their absence in the refit's window must be to record it
NEW_P = 0.01  # how improbable a new member's quiet before its step must be (with a new browser)
NEW_BROWSER_SLACK = 3  # a browser first used this few sessions before a step is new with it
ABSENT_BEFORE = 0.1  # a new member had at most this share of the sessions before its step
MIN_SESSIONS = 3  # sessions of a new member before its arrival can be judged
JUDGED_AFTER = 12  # sessions of a new member after which its arrival is judged for good
SETTLED_MEMBER = 8  # sessions of a member before its absence can mean it left
MIN_REFERENCE = 8  # sessions before a step, at least, for the quiet there to mean anything


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

    def gone(self, now: int) -> list[int]:
        """Members absent for longer than chance allows (below GONE_P); a refit then judges."""
        out = []
        for member, last in list(self.last.items()):
            if self.sessions.get(member, 0) < SETTLED_MEMBER:
                continue
            if absence_p(self.share[member], now - last) < GONE_P:
                out.append(member)
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


def arrived(
    mine: Sequence[bool], browser_since: Sequence[int], at: int, member: int
) -> Change | bool | None:
    """A join, None when it is not one, or True when it is too early to tell.

    `mine` marks the window's sessions (oldest first) the model gives the member;
    `browser_since` is, per session, the window position where its browser first shows; `at`
    is the account's session count at the window's start. The change point is where a step
    up in the member's 0/1 series fits best. A join needs the member to be new there (its few
    sessions before the step improbable at its rate after it, taken at the rate's lower 90%
    bound: binomial, below NEW_P) and to have come with a browser: most of its sessions since
    are on browsers first used around the step. A member a refit merely split off an existing
    one was there before, on browsers seen before.
    """
    series = np.asarray(mine, dtype=bool)
    step = _step(series)
    if step is None or step < MIN_REFERENCE:
        return None
    since = int(series[step:].sum())
    before = int(series[:step].sum())
    if since < MIN_SESSIONS:
        return True
    if before > ABSENT_BEFORE * step:
        return None
    rate = float(beta.ppf(0.1, since, len(series) - step - since + 1))
    p_value = float(binom.cdf(before, step, rate))
    if p_value >= NEW_P:
        return True if since < JUDGED_AFTER else None  # more sessions may make it telling
    theirs = np.flatnonzero(series[step:]) + step
    novel = [browser_since[int(i)] >= step - NEW_BROWSER_SLACK for i in theirs]
    if np.mean(novel) < 0.5:
        return None
    return Change("join", member, at + step, p_value)


def departed(mine: Sequence[bool], at: int, member: int) -> Change | bool | None:
    """A leave, None when the member is plainly still there, or True when it is too early.

    The mirror of `judge`: a step down in the member's 0/1 series, the member's few sessions
    since improbable at its rate before the step (taken at its lower 90% bound).
    """
    series = np.asarray(mine, dtype=bool)
    step = _step(series, rising=False)
    if step is None:
        return None
    before = int(series[:step].sum())
    since = int(series[step:].sum())
    if before < SETTLED_MEMBER or since > ABSENT_BEFORE * (len(series) - step):
        return None
    rate = float(beta.ppf(0.1, before, step - before + 1))
    p_value = float(binom.cdf(since, len(series) - step, rate))
    if p_value >= LEAVE_P:
        return True
    return Change("leave", member, at + step, p_value)


def _step(series: np.ndarray, *, rising: bool = True) -> int | None:
    """Where a step in a 0/1 series' rate fits best (None if no step that way fits)."""
    n = len(series)
    if n < 2:
        return None
    ones_before = np.concatenate([[0], np.cumsum(series)])[1:-1]  # ones in series[:t], t=1..n-1
    t = np.arange(1, n)
    ones_after = series.sum() - ones_before
    gain = _bernoulli(ones_before, t) + _bernoulli(ones_after, n - t)
    up = ones_after / (n - t) > ones_before / t
    way = up if rising else ~up & (ones_after / (n - t) < ones_before / t)
    if not way.any():
        return None
    return int(t[np.argmax(np.where(way, gain, -np.inf))])


def _bernoulli(ones: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Maximised log-likelihood of `ones` successes in `total` trials."""
    p = ones / total
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = np.nan_to_num(ones * np.log(p)) + np.nan_to_num(
            (total - ones) * np.log1p(-p)
        )
    return result
