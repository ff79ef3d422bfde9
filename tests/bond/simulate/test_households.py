"""The generator: reproducible households with ground truth that holds together."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bond.simulate.households import Settings, generate
from bond.simulate.traffic import messages
from collector.validate import parse_time
from engine.households.sessions import RawEvent, sessionise


def _people(settings: Settings) -> list:  # type: ignore[type-arg]
    return generate(settings)


def test_the_same_seed_gives_the_same_households() -> None:
    a = _people(Settings(households=20, seed=4))
    b = _people(Settings(households=20, seed=4))
    c = _people(Settings(households=20, seed=5))
    key = [(h.account, len(h.sessions), h.sessions[0].start_ms) for h in a]
    assert key == [(h.account, len(h.sessions), h.sessions[0].start_ms) for h in b]
    assert key != [(h.account, len(h.sessions), h.sessions[0].start_ms) for h in c]


def test_household_sizes_follow_the_census_shares() -> None:
    households = _people(Settings(households=600, seed=6, change_rate=0.0))
    sizes = Counter(len(h.members) for h in households)
    assert abs(sizes[1] / 600 - 0.289) < 0.05
    assert abs(sizes[2] / 600 - 0.342) < 0.05


def test_each_simulated_session_is_one_session_to_a_tracker() -> None:
    households = _people(Settings(households=30, seed=7))
    for household in households:
        starts = [s.start_ms for s in household.sessions]
        assert starts == sorted(starts)
    events = [
        RawEvent(
            1,
            m["anonymousId"],
            parse_time(m["timestamp"], "timestamp"),
            properties=m.get("properties", {}),
        )
        for m in messages(households)
    ]
    assert len(sessionise(events)) == sum(len(h.sessions) for h in households)


def test_personal_devices_are_only_their_owners_and_changes_happen_when_scheduled() -> None:
    households = _people(Settings(households=80, seed=8, change_rate=1.0))
    assert all(h.change is not None for h in households)
    for household in households:
        for s in household.sessions:
            if not s.device.shared:
                owner = next(m for m in household.members if s.device in m.devices)
                assert owner.index == s.member and s.co_member is None
        change = household.change
        assert change is not None
        mine = [s.start_ms for s in household.sessions if s.member == change.member]
        if change.kind == "join":
            assert all(t >= change.at_ms for t in mine)
        else:
            assert all(t < change.at_ms for t in mine)


def test_harder_settings_share_more_sessions_and_blur_tastes() -> None:
    def shared_share(difficulty: float) -> float:
        sessions = [
            s
            for h in _people(Settings(households=80, seed=9, difficulty=difficulty))
            for s in h.sessions
        ]
        return float(np.mean([s.device.shared for s in sessions]))

    def taste_gap(difficulty: float) -> float:
        gaps = [
            np.abs(h.members[0].tastes - h.members[1].tastes).sum()
            for h in _people(Settings(households=80, seed=9, difficulty=difficulty))
            if len(h.members) >= 2
        ]
        return float(np.mean(gaps))

    assert shared_share(0.0) < shared_share(0.5) < shared_share(1.0)
    assert taste_gap(1.0) < taste_gap(0.0)
