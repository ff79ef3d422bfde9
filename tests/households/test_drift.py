from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bond.simulate.households import Settings
from bond.simulate.offline import run
from bond.storage.sqlite import connect
from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.arrival import NEW_P, arrived
from engine.households.calibration import load
from engine.households.drift import (
    LEAVE_ALARM,
    LEFT_SHARE,
    MIN_SESSIONS,
    Change,
    Novelty,
    Shares,
    newcomer_probability,
)
from engine.households.processor import HouseholdProcessor
from tests.households.support import feed


def test_sessions_the_members_explain_keep_the_newcomer_alarm_quiet() -> None:
    rng = np.random.default_rng(0)
    novelty = Novelty()
    # Mostly well explained (z < 0), now and then an odd session that a stranger fits better.
    alarms = [novelty.add(float(z), at) for at, z in enumerate(rng.normal(-4.0, 2.5, 400))]
    assert not any(alarms)


def test_a_run_of_sessions_that_look_new_rings_once_it_has_enough_of_them() -> None:
    novelty = Novelty()
    for at in range(1, 30):
        assert not novelty.add(-4.0, at)
    assert not novelty.add(6.0, 30)  # one odd session is evidence, not yet a member
    assert not novelty.add(-4.0, 31)
    assert not novelty.add(5.0, 32)
    assert novelty.add(5.0, 33)
    assert novelty.since == 30 and novelty.novel == [30, 32, 33]
    assert not novelty.add(-4.0, 34)  # rings again only with a further new-looking session
    assert novelty.add(4.0, 35) and len(novelty.novel) == MIN_SESSIONS + 1


def test_the_newcomer_probability_grows_with_z() -> None:
    assert newcomer_probability(-10.0) < 0.01 < newcomer_probability(0.0) < 0.5
    assert newcomer_probability(5.0) > 0.95


HOUR_MS = 3_600_000


def _feed_shares(
    series: list[int],
    shares: dict[int, float],
    resp: list[dict[int, float]] | None = None,
    gaps_h: list[float] | None = None,
) -> list[tuple[int, Change]]:
    """Feed a series of sessions, `gaps_h` hours apart (12 hours each unless given)."""
    watch = Shares()
    given = resp or [{member: 1.0} for member in series]
    starts = np.cumsum(gaps_h or [12.0] * len(series)) * HOUR_MS
    return [
        (at, c)
        for at, (member, r, start) in enumerate(zip(series, given, starts, strict=True), 1)
        for c in watch.add(member, r, shares, at, int(start))
    ]


def test_a_member_gone_silent_is_a_leave_once_the_silence_is_improbable() -> None:
    rng = np.random.default_rng(4)
    before = [1 if rng.random() < 0.5 else 2 for _ in range(60)]
    # Two a day for a month, then member 1 alone at its own pace: one a day.
    found = _feed_shares([*before, *[1] * 20], {1: 0.5, 2: 0.5}, gaps_h=[12.0] * 60 + [24.0] * 20)
    ((at, change),) = found
    last_seen = max(i for i, m in enumerate(before, 1) if m == 2)
    assert change.kind == "leave" and change.member == 2
    assert last_seen < change.change_at <= 61
    # Each day alone member 2 misses about one session of its own: (1 - 0.1) nats of evidence.
    # Counting only member 1's sessions (log(1 - 0.1 * 0.5) - log(0.5) each) needed eleven.
    assert at - len(before) == math.ceil(LEAVE_ALARM / (1 - LEFT_SHARE)) < 11
    assert change.p_value < 0.01


def test_a_silence_of_the_whole_account_is_no_leave() -> None:
    rng = np.random.default_rng(6)
    series = [1 if rng.random() < 0.5 else 2 for _ in range(120)]
    # Three weeks away (a holiday) in the middle, then both back as before.
    gaps = [12.0] * 60 + [21 * 24.0] + [12.0] * 59
    assert _feed_shares(series, {1: 0.5, 2: 0.5}, gaps_h=gaps) == []


def test_members_browsing_at_random_times_at_their_usual_rates_raise_no_leave() -> None:
    rng = np.random.default_rng(8)
    # A Poisson process: 1.5 sessions a day, 70% member 1, for about three years.
    series = [1 if rng.random() < 0.7 else 2 for _ in range(1600)]
    gaps = list(rng.exponential(24.0 / 1.5, 1600))
    assert _feed_shares(series, {1: 0.7, 2: 0.3}, gaps_h=gaps) == []


def test_sessions_the_model_cannot_tell_apart_are_no_evidence_of_a_leave() -> None:
    rng = np.random.default_rng(4)
    before = [1 if rng.random() < 0.5 else 2 for _ in range(60)]
    # Member 2 goes on, but the model now gives its sessions to 1 by a hair.
    series = [*before, *[1] * 30]
    sure = [{m: 1.0} for m in before]
    unsure = [{1: 0.55, 2: 0.45}] * 30
    assert _feed_shares(series, {1: 0.5, 2: 0.5}, sure + unsure) == []
    # Nor are sessions none of the members explains (a newcomer's).
    newcomer = [{1: 0.02, 2: 0.02}] * 30
    assert _feed_shares(series, {1: 0.5, 2: 0.5}, sure + newcomer) == []


def test_members_taking_turns_at_their_usual_shares_raise_no_leave() -> None:
    rng = np.random.default_rng(5)
    series = [1 if rng.random() < 0.7 else 2 for _ in range(600)]
    assert _feed_shares(series, {1: 0.7, 2: 0.3}) == []


def test_a_new_member_on_a_new_browser_is_a_join() -> None:
    rng = np.random.default_rng(2)
    mine = [False] * 40 + list(rng.random(20) < 0.5)
    mine[41] = True
    browsers = list(range(40)) + [40 if m else 0 for m in mine[40:]]
    change = arrived(mine, browsers, at=100, member=7)
    assert isinstance(change, Change) and change.kind == "join" and change.member == 7
    assert 140 <= change.change_at <= 142 and change.p_value < NEW_P


def test_a_member_split_off_an_existing_one_is_not_a_join() -> None:
    rng = np.random.default_rng(3)
    mine = [False] * 40 + list(rng.random(40) < 0.5)
    mine[41] = True
    # All its browsers were in use long before: it was there all along, now told apart. Early
    # on that is not yet telling (a newcomer may start on the family computer), later it is.
    assert arrived(mine[:50], [0] * 50, at=100, member=7) is True
    assert arrived(mine, [0] * 80, at=100, member=7) is None
    # Present before the step too.
    assert arrived(list(rng.random(60) < 0.4), list(range(60)), at=0, member=7) is None
    # Only two sessions since: wait.
    assert arrived([False] * 40 + [True, True], list(range(42)), at=0, member=7) is True


def _scripted_sessions(
    script: list[tuple[str, int, list[str]]], half_days: list[int] | None = None
) -> list[list[AppliedEvent]]:
    """One batch per session of the script: (browser, hour, tastes), in the half-day given
    for it (two sessions a day unless `half_days` says otherwise)."""
    rng = np.random.default_rng(5)
    batches, seq, at = [], 0, 1_704_067_200_000
    slots = half_days or list(range(len(script)))
    for n, (device, hour, tastes) in zip(slots, script, strict=True):
        start = at + n * 86_400_000 // 2 + int(hour + rng.normal(0, 1)) * 3_600_000
        events = []
        for i, category in enumerate(rng.choice(tastes, size=4)):
            seq += 1
            phone = "Mozilla/5.0 (iPhone) Mobile" if "phone" in device else None
            fields = (seq, 1, True, "default", "track", "Product Viewed", device, "acct")
            properties = {"category": str(category)}
            events.append(
                AppliedEvent(
                    *fields, start + i * 60_000, 0, phone, properties, {}, {"timezone": "UTC"}
                )
            )
        batches.append(events)
    return batches


MUM = ("mum-phone", 9, ["garden", "books"])
MUM_AT_HOME = ("family-desktop", 9, ["garden", "books"])
TEEN = ("teen-phone", 22, ["gaming", "fashion"])


def _changes(
    tmp_path: Path, script: list[tuple[str, int, list[str]]], half_days: list[int] | None = None
) -> list[store.DriftEvent]:
    conn = connect(tmp_path / "s.db", durable=False)
    store.migrate_households(conn)
    feed(conn, HouseholdProcessor(load()), _scripted_sessions(script, half_days))
    return store.drift_events(conn)


def test_a_scripted_newcomer_is_recorded_as_a_join_soon_after_arriving(tmp_path: Path) -> None:
    # One person for 40 sessions, then a second on a new phone with other tastes and hours.
    alone = [MUM if n % 3 else MUM_AT_HOME for n in range(40)]
    together = [TEEN if n % 2 else (MUM if n % 3 else MUM_AT_HOME) for n in range(40, 80)]
    (join,) = _changes(tmp_path, alone + together)
    arrival = 41  # the newcomer's first session
    assert join.kind == "join"
    assert arrival <= join.sessions_seen - join.sessions_since_change <= arrival + 2
    assert join.sessions_seen <= arrival + 12  # recorded within six of the newcomer's sessions


def test_a_scripted_member_who_stops_is_recorded_as_a_leave(tmp_path: Path) -> None:
    # Mum and the teen a session each a day; then the teen stops and mum goes on as before.
    together = [TEEN if n % 2 else (MUM if n % 3 else MUM_AT_HOME) for n in range(50)]
    alone = [MUM if n % 3 else MUM_AT_HOME for n in range(50, 80, 2)]
    (leave,) = _changes(tmp_path, together + alone, [*range(50), *range(50, 80, 2)])
    assert leave.kind == "leave"
    assert 48 <= leave.sessions_seen - leave.sessions_since_change <= 52
    # Counting the teen's days without a session finds it within eleven of mum's sessions
    # alone; counting only mum's sessions against the teen's share took thirteen.
    assert leave.sessions_seen <= 50 + 11


def test_simulated_changes_are_found_and_stable_households_left_alone() -> None:
    changing = run(Settings(households=60, seed=41, change_rate=1.0), load()).report()["drift"]
    stable = run(Settings(households=60, seed=41, change_rate=0.0), load()).report()["drift"]
    assert changing["changes"] == 60 and changing["detected"] >= 20
    # Counting only the others' sessions as evidence found 7 of the 23 leaves here, with 7
    # false alarms (2 in the stable households).
    assert changing["leaves"]["changes"] == 23 and changing["leaves"]["detected"] >= 8
    assert changing["false_alarms"] <= 5 and stable["false_alarms"] <= 1
