"""Household change detection: someone joins or leaves the account.

Joins. Each finished session is scored twice before the model learns from it: its likelihood
under the account's current mixture, and under a member the model has not seen (the same
formulas with no history: any hour, any device, any category alike). z, the log of their ratio,
is how much better "someone new" explains the session. A join turns the stream into a mixture
of the old members and a newcomer with some share w, so the evidence of one session for that
change is log(1 - w + w e^z): a small cost for each session the old members explain, a gain for
each one they do not. `Novelty` accumulates it as a Page-Hinkley (CUSUM) test and raises an alarm
when it passes NOVELTY_ALARM; the change began where the sum last left zero.

An alarm asks for a refit that may seed a new member with the sessions that looked new; the
test that confirms a join is in arrival.py.

Leaves lower surprise, so the likelihood cannot show them; a member's rate of sessions does.
The account's sessions are a marked Poisson process, each member's at its own rate (its share
of the account's rate, measured in time with a fading memory, `Rate`). `Shares` runs one CUSUM
per settled member of the log likelihood ratio of "its rate fell to LEFT_SHARE of what it was"
against "it stayed", fed per session: the time since the account's last session, in which the
member would have had share x rate x gap sessions, is evidence that it left, and the session
itself evidence against in proportion to the member's responsibility for it (a session the
model cannot tell apart, or that none of the members explains, next to none). Counting the
time, not only the sessions of the others, is what makes a quiet household's leave show: the
last round summed each session's ratio under the mixture with the member's share cut, which
gathers evidence only as fast as the others browse. A silence of the whole account is a
holiday as much as a leave, so one gap counts for at most SILENCE_CAP. The alarm is the leave:
its threshold is set for few false alarms over a household's life, so it needs no second test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

WARMUP = 10  # sessions of an account before novelty means anything: the model is still forming
NEWCOMER_SHARE = 0.2  # w: the share of sessions a newcomer is assumed to take
OWN_BROWSER = 0.7  # how many of a newcomer's sessions are on browsers of their own
NOVELTY_ALARM = 3.0  # nats of accumulated evidence for a newcomer that ask for a refit
LEFT_SHARE = 0.1  # a member who left is modelled as keeping a tenth of their rate
LEAVE_ALARM = 6.5  # nats of accumulated evidence that a member left
SILENCE_CAP = 3.0  # nats one silence of the whole account can add to a leave, at most
RATE_MEMORY_MS = 28 * 86_400_000  # the account's session rate fades over about four weeks
MIN_EXPOSURE_MS = 7 * 86_400_000  # a rate measured over less than this says little yet
SETTLED_MEMBER = 8  # sessions of a member before its silence can mean it left
MIN_SESSIONS = 3  # sessions of a new member before its arrival can be judged


class Change(NamedTuple):
    kind: str  # "join" or "leave"
    member: int
    change_at: int  # the account's session count where the change began
    p_value: float


def newcomer_probability(z: float) -> float:
    """How likely a session with this z was made by a newcomer (of share NEWCOMER_SHARE)."""
    odds = math.exp(min(z, 50.0) + math.log(NEWCOMER_SHARE / (1.0 - NEWCOMER_SHARE)))
    return odds / (1.0 + odds)


@dataclass
class Novelty:
    """CUSUM of log(1 - w + w e^z) over an account's sessions (see the module docstring)."""

    cusum: float = 0.0
    since: int | None = None  # session count where the sum last left zero
    novel: list[int] = field(default_factory=list)  # session counts since then with z > 0
    alarmed: int = 0  # how many of them the last alarm had

    def add(self, z: float, at: int) -> bool:
        """Feed session `at`'s z; True when the evidence for a newcomer passes the alarm.

        The alarm waits for MIN_SESSIONS sessions that looked new, and rings again with each
        further one while the evidence stays: one odd session is evidence, but a refit cannot
        make a member of it, and one that could not yet may with a session more.
        """
        step = math.log1p(NEWCOMER_SHARE * math.expm1(min(z, 50.0)))
        if self.cusum + step <= 0.0:
            self.reset()
            return False
        if self.since is None:
            self.since = at
        self.cusum += step
        if z > 0.0:
            self.novel.append(at)
        if self.cusum > NOVELTY_ALARM and len(self.novel) >= max(MIN_SESSIONS, self.alarmed + 1):
            self.alarmed = len(self.novel)
            return True
        return False

    def reset(self) -> None:
        self.cusum = 0.0
        self.since = None
        self.novel = []
        self.alarmed = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cusum": self.cusum,
            "since": self.since,
            "novel": self.novel,
            "alarmed": self.alarmed,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Novelty:
        return cls(raw["cusum"], raw["since"], list(raw["novel"]), raw["alarmed"])


@dataclass
class Rate:
    """The account's sessions per millisecond, counted with a fading memory of RATE_MEMORY_MS.

    The first session only starts the clock; `count` and `exposure` are the faded number of
    sessions since and the faded time they took.
    """

    clock: int | None = None
    count: float = 0.0
    exposure: float = 0.0

    def expected(self, now_ms: int) -> float:
        """How many sessions the account had due between its last session and `now_ms`."""
        if self.clock is None or self.exposure < MIN_EXPOSURE_MS:
            return 0.0
        return max(now_ms - self.clock, 0) * self.count / self.exposure

    def add(self, now_ms: int) -> None:
        if self.clock is None:
            self.clock = now_ms
            return
        # Sessions close in the order they end, so one may start before the last one seen.
        gap = max(now_ms - self.clock, 0)
        fade = math.exp(-gap / RATE_MEMORY_MS)
        self.count = self.count * fade + 1.0
        self.exposure = self.exposure * fade + RATE_MEMORY_MS * (1.0 - fade)
        self.clock = max(self.clock, now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"clock": self.clock, "count": self.count, "exposure": self.exposure}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Rate:
        return cls(raw["clock"], float(raw["count"]), float(raw["exposure"]))


@dataclass
class Shares:
    """One CUSUM per member for its rate of sessions collapsing (see the module docstring)."""

    cusum: dict[int, float] = field(default_factory=dict)
    since: dict[int, int] = field(default_factory=dict)  # session count where the sum left zero
    sessions: dict[int, int] = field(default_factory=dict)  # sessions given to the member
    rate: Rate = field(default_factory=Rate)

    def add(
        self,
        member: int,
        resp: dict[int, float],
        shares: dict[int, float],
        at: int,
        start_ms: int,
    ) -> list[Change]:
        """Feed session `at`, given to `member`, begun at `start_ms`; the members' shares now.

        `resp` is each member's responsibility for the session; what they leave unexplained
        (a newcomer) is evidence neither way. A session the model cannot tell apart weighs
        little: counting it whole for whoever is likeliest made a member whose sessions went
        to another for a while look gone.
        """
        self.sessions[member] = self.sessions.get(member, 0) + 1
        # A session none of the members explains may be one of them in a new guise, so the
        # silence it ends counts only as far as the members explain it.
        explained = min(sum(resp.values()), 1.0)
        due = explained * self.rate.expected(start_ms)  # the account's sessions since the last
        left = []
        for other, share in shares.items():
            if self.sessions.get(other, 0) < SETTLED_MEMBER or not 0.0 < share < 1.0:
                continue
            step = _leave_step(resp.get(other, 0.0), share * due)
            total = self.cusum.get(other, 0.0) + step
            if total <= 0.0:
                self.cusum.pop(other, None)
                self.since.pop(other, None)
                continue
            self.cusum[other] = total
            since = self.since.setdefault(other, at)
            # Whoever the session is given to was just here, however long its silence before.
            if total > LEAVE_ALARM and other != member:
                absent = at - since + 1
                left.append(Change("leave", other, since, math.exp(absent * math.log1p(-share))))
                self.forget(other)
        self.rate.add(start_ms)
        return left

    def keep_only(self, members: Sequence[int]) -> None:
        for member in [m for m in self.sessions if m not in members]:
            self.forget(member)

    def forget(self, member: int) -> None:
        self.cusum.pop(member, None)
        self.since.pop(member, None)
        self.sessions.pop(member, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cusum": [[m, v] for m, v in self.cusum.items()],
            "since": [[m, v] for m, v in self.since.items()],
            "sessions": [[m, v] for m, v in self.sessions.items()],
            "rate": self.rate.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Shares:
        return cls(
            {int(m): float(v) for m, v in raw["cusum"]},
            {int(m): int(v) for m, v in raw["since"]},
            {int(m): int(v) for m, v in raw["sessions"]},
            # A state saved before the account's rate was kept starts measuring it now.
            Rate.from_dict(raw["rate"]) if "rate" in raw else Rate(),
        )


def _leave_step(mine: float, due: float) -> float:
    """Log likelihood ratio of one session and the silence before it, member left : stayed.

    The account's sessions are a marked Poisson process, each member's at its own rate. If the
    member left, its rate is LEFT_SHARE of what it was: the session is
    1 - (1 - LEFT_SHARE) * `mine` as likely (`mine` its responsibility for it), and the time
    since the account's last session, in which the member would have had `due` sessions, is
    (1 - LEFT_SHARE) * `due` nats likelier to have passed without one. A silence of the whole
    account (a holiday) is as much evidence of every member leaving, so one silence counts for
    at most SILENCE_CAP.
    """
    silence = min((1.0 - LEFT_SHARE) * due, SILENCE_CAP)
    return silence + math.log1p(-(1.0 - LEFT_SHARE) * mine)
