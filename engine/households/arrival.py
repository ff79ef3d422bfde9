"""The test that confirms a join, on a refit's window (see drift.py for what asks for one).

The new member's sessions must step up where the change began, the quiet before it improbable
at its rate since (binomial), on a browser the account had not used. A member a refit merely
split off an existing one was there before, on browsers seen before, so refining the model is
not mistaken for a change.

Apart from drift.py's state because only the worker runs it: SciPy's special functions take
about half a second to import, which the read API, reading that state, does without.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import bdtr, betaincinv

from engine.households.drift import MIN_SESSIONS, Change

NEW_P = 0.01  # how improbable a new member's quiet before its step must be (with a new browser)
NEW_BROWSER_SLACK = 3  # a browser first used this few sessions before a step is new with it
NEW_BROWSER_SHARE = 0.4  # of a newcomer's sessions since, at least, are on browsers new with them
JUDGED_AFTER = 12  # sessions of a new member after which its arrival is judged for good
MIN_REFERENCE = 10  # sessions before a step, at least, for the quiet there to mean anything


def arrived(
    mine: Sequence[bool], browser_since: Sequence[int], at: int, member: int
) -> Change | bool | None:
    """A join, None when it is not one, or True when it is too early to tell.

    `mine` marks the window's sessions (oldest first) the model gives the member;
    `browser_since` is, per session, the window position where its browser first shows; `at`
    is the account's session count at the window's start. The change point is where a step
    up in the member's 0/1 series fits best. A join needs the member to be new there (its few
    sessions before the step improbable at its rate after it, taken at the rate's lower 90%
    bound: binomial, below NEW_P) and to have come with a browser: NEW_BROWSER_SHARE of its
    sessions since are on browsers first used around the step (a newcomer also uses the shared
    computer, but mostly their own phone). A member a refit merely split off an existing one
    was there before, on browsers seen before.
    """
    series = np.asarray(mine, dtype=bool)
    step = _step(series)
    if step is None or step < MIN_REFERENCE:
        return None
    since = int(series[step:].sum())
    before = int(series[:step].sum())
    if since < MIN_SESSIONS:
        return True
    rate = float(betaincinv(since, len(series) - step - since + 1, 0.1))
    p_value = float(bdtr(before, step, rate))
    if p_value >= NEW_P:
        return True if since < JUDGED_AFTER else None  # more sessions may make it telling
    theirs = np.flatnonzero(series[step:]) + step
    novel = np.mean([browser_since[int(i)] >= step - NEW_BROWSER_SLACK for i in theirs])
    if novel < NEW_BROWSER_SHARE:
        return True if since < JUDGED_AFTER else None
    return Change("join", member, at + step, p_value)


def _step(series: np.ndarray) -> int | None:
    """Where a step up in a 0/1 series' rate fits best (None if no step up fits)."""
    n = len(series)
    if n < 2:
        return None
    ones_before = np.concatenate([[0], np.cumsum(series)])[1:-1]  # ones in series[:t], t=1..n-1
    t = np.arange(1, n)
    ones_after = series.sum() - ones_before
    gain = _bernoulli(ones_before, t) + _bernoulli(ones_after, n - t)
    up = ones_after / (n - t) > ones_before / t
    if not up.any():
        return None
    return int(t[np.argmax(np.where(up, gain, -np.inf))])


def _bernoulli(ones: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Maximised log-likelihood of `ones` successes in `total` trials."""
    p = ones / total
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = np.nan_to_num(ones * np.log(p)) + np.nan_to_num(
            (total - ones) * np.log1p(-p)
        )
    return result
