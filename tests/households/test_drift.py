from __future__ import annotations

from pathlib import Path

import numpy as np

from bond.simulate.households import Settings
from bond.simulate.offline import run
from bond.storage.sqlite import connect
from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.calibration import load
from engine.households.drift import (
    GONE_P,
    LEAVE_P,
    NEW_P,
    Change,
    PageHinkley,
    Presence,
    arrived,
    departed,
)
from engine.households.processor import HouseholdProcessor
from tests.households.support import feed


def test_page_hinkley_flags_a_sustained_rise_in_surprise() -> None:
    rng = np.random.default_rng(0)
    detector = PageHinkley()
    assert not any(detector.add(float(v)) for v in rng.normal(10.0, 1.0, 80))
    delay = next(i for i, v in enumerate(rng.normal(12.5, 1.0, 40), 1) if detector.add(float(v)))
    assert delay <= 10


def test_page_hinkley_stays_quiet_on_a_stable_household() -> None:
    rng = np.random.default_rng(1)
    detector = PageHinkley()
    assert not any(detector.add(float(v)) for v in rng.normal(10.0, 2.0, 500))


def test_a_member_silent_far_longer_than_their_share_allows_is_suspected() -> None:
    presence = Presence()
    for at in range(1, 41):  # two members taking turns
        presence.saw(1 if at % 2 else 2, at, 0.5)
    suspected = []
    for now in range(41, 60):  # member 1 carries on alone
        presence.saw(1, now, 0.5)
        suspected += [(now, m) for m in presence.gone(now)]
    first_improbable = min(n for n in range(41, 60) if 0.5 ** (n - 40) < GONE_P)
    assert suspected == [(first_improbable, 2)]


def test_a_step_down_in_a_members_sessions_is_a_leave() -> None:
    rng = np.random.default_rng(4)
    before = list(rng.random(60) < 0.5)
    assert departed([*before, *[False] * 4], at=100, member=2) is True  # too early to tell
    change = departed([*before, *[False] * 20], at=100, member=2)
    assert isinstance(change, Change) and change.kind == "leave" and change.member == 2
    assert change.change_at == 100 + max(i for i, v in enumerate(before) if v) + 1
    assert change.p_value < LEAVE_P
    still_there = departed([*before, *(rng.random(20) < 0.5)], at=100, member=2)
    assert not isinstance(still_there, Change)


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
    mine = [False] * 40 + list(rng.random(20) < 0.5)
    mine[41] = True
    # All its browsers were in use long before: it was there all along, now told apart.
    assert arrived(mine, [0] * 60, at=100, member=7) is None
    # Present before the step too.
    assert arrived(list(rng.random(60) < 0.4), list(range(60)), at=0, member=7) is None
    # Only two sessions since: wait.
    assert arrived([False] * 40 + [True, True], list(range(42)), at=0, member=7) is True


def _scripted_sessions() -> list[list[AppliedEvent]]:
    """One person for 40 sessions, then a second on a new phone with other tastes and hours."""
    rng = np.random.default_rng(5)
    batches, seq, at = [], 0, 1_704_067_200_000
    for n in range(80):
        newcomer = n >= 40 and n % 2 == 1
        device, hour, tastes = (
            ("teen-phone", 22, ["gaming", "fashion"])
            if newcomer
            else ("mum-phone" if n % 3 else "family-desktop", 9, ["garden", "books"])
        )
        start = at + n * 86_400_000 // 2 + int(hour + rng.normal(0, 1)) * 3_600_000
        events = []
        for i, category in enumerate(rng.choice(tastes, size=4)):
            seq += 1
            events.append(
                AppliedEvent(
                    seq,
                    1,
                    True,
                    "default",
                    "track",
                    "Product Viewed",
                    device,
                    "acct",
                    start + i * 60_000,
                    0,
                    "Mozilla/5.0 (iPhone) Mobile" if "phone" in device else None,
                    {"category": str(category)},
                    {},
                    {"timezone": "UTC"},
                )
            )
        batches.append(events)
    return batches


def test_a_scripted_newcomer_is_recorded_as_a_join_soon_after_arriving(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.db", durable=False)
    store.migrate_households(conn)
    feed(conn, HouseholdProcessor(load()), _scripted_sessions())
    joins = [e for e in store.drift_events(conn) if e.kind == "join"]
    assert len(joins) == 1
    (join,) = joins
    arrival = 41  # the newcomer's first session
    assert arrival <= join.sessions_seen - join.sessions_since_change <= arrival + 2
    assert join.sessions_seen <= arrival + 20  # recorded within ten of the newcomer's sessions
    assert [e for e in store.drift_events(conn) if e.kind == "leave"] == []


def test_simulated_changes_are_found_and_stable_households_left_alone() -> None:
    changing = run(Settings(households=60, seed=41, change_rate=1.0), load()).report()["drift"]
    stable = run(Settings(households=60, seed=41, change_rate=0.0), load()).report()["drift"]
    assert changing["changes"] == 60 and changing["detected"] >= 8
    assert changing["false_alarms"] <= 2 and stable["false_alarms"] <= 3
