from __future__ import annotations

import numpy as np

from engine.households.drift import CHANGE_P, SURPRISE_P, PageHinkley, Presence, joined


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


def test_a_member_silent_far_longer_than_their_share_allows_has_left() -> None:
    presence = Presence()
    for at in range(1, 41):  # two members taking turns
        presence.saw(1 if at % 2 else 2, at, 0.5)
    quiet = [c for now in range(41, 46) for c in presence.gone(now)]
    assert quiet == []  # five sessions without member 2 happen by chance
    changes = [c for now in range(46, 80) for c in presence.gone(now)]
    (change,) = [c for c in changes if c.member == 2]
    assert change.kind == "leave" and change.change_at == 41 and change.p_value < CHANGE_P
    assert presence.gone(100) == [c for c in presence.gone(100) if c.member != 2]


def test_a_new_member_that_was_surprising_is_a_join() -> None:
    rng = np.random.default_rng(2)
    before = list(rng.normal(10.0, 1.0, 40))
    newcomer = list(rng.normal(14.0, 1.0, 8))
    change = joined(7, 40, 8, 0.4, before, newcomer, at=100)
    assert change is not None and change.kind == "join" and change.member == 7
    assert change.change_at == 140 and change.p_value < SURPRISE_P


def test_a_member_split_off_an_existing_one_is_not_a_join() -> None:
    rng = np.random.default_rng(3)
    before = list(rng.normal(10.0, 1.0, 40))
    # Its first session is early in the window: it was there all along.
    assert joined(7, 3, 20, 0.4, before[:3], list(rng.normal(14.0, 1.0, 20)), at=0) is None
    # New, but no more surprising than everyone else.
    assert joined(7, 40, 8, 0.4, before, list(rng.normal(10.0, 1.0, 8)), at=0) is None
