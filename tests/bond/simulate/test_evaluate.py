"""Scoring against ground truth, on a household small enough to check by hand."""

from __future__ import annotations

import numpy as np

from bond.simulate.evaluate import WEEK_MS, evaluate
from bond.simulate.households import Change, Device, Household, Member, SimSession
from bond.simulate.traffic import truth_of
from engine.households.store import Attribution, DriftEvent, SessionRow

DAY_MS = 86_400_000
SPLIT = 4 * WEEK_MS


def _household(change: Change | None = None) -> Household:
    phone_a = Device("a-phone", "mobile", shared=False)
    phone_b = Device("b-phone", "mobile", shared=False)
    members = [
        Member(0, "working_adult", np.ones((7, 24)), np.ones(12), [phone_a], 3.0, 0, 8 * WEEK_MS),
        Member(1, "teen", np.ones((7, 24)), np.ones(12), [phone_b], 3.0, 0, 8 * WEEK_MS),
    ]
    household = Household(0, "acct", "UTC", members, [phone_a, phone_b], change=change)
    for day in range(56):
        device, member = (phone_a, 0) if day % 2 else (phone_b, 1)
        order = f"o{day}" if day % 7 == 0 else None
        household.sessions.append(
            SimSession(member, None, device, day * DAY_MS, ["books"], order, [])
        )
    return household


def _rows(household: Household, model_member: dict[int, int]) -> list[SessionRow]:
    return [
        SessionRow(1, s.device.anonymous_id, s.start_ms, {}, model_member[s.member], 0.9, None)
        for s in household.sessions
    ]


def _attributions(household: Household, member_of: dict[int, int], p: float) -> list[Attribution]:
    out = []
    for s in household.sessions:
        if s.order_id:
            guess = member_of[s.member]
            probs = {1: p if guess == 1 else 1 - p, 2: p if guess == 2 else 1 - p}
            out.append(Attribution(s.start_ms, 1, s.order_id, s.start_ms, s.device.anonymous_id,
                                   guess, p, probs, [0.0, -1.0], 10))  # fmt: skip
    return out


def test_a_model_that_tells_the_two_apart_is_scored_right_and_calibrated() -> None:
    household = _household()
    truth = truth_of([household])
    # Model member 1 is the teen (person 1), model member 2 the adult (person 0).
    names = {1: 1, 0: 2}
    report = evaluate(truth, _rows(household, names), _attributions(household, names, 0.8), [],
                      {1: "acct"}, split_ms=SPLIT, final_members={1: 2})  # fmt: skip
    overall = report["overall"]
    orders_after = [s for s in household.sessions if s.order_id and s.start_ms >= SPLIT]
    assert report["conversions_scored"] == overall["n"] == len(orders_after)
    assert overall["accuracy"] == 1.0 and overall["random_accuracy"] == 0.5
    assert abs(overall["ece"] - 0.2) < 1e-9  # always 80% sure, always right
    assert report["member_count"]["exact"] == 1.0
    assert report["ari"]["overall"] == 1.0


def test_an_account_level_model_gets_the_most_active_member_right_only() -> None:
    household = _household()
    truth = truth_of([household])
    everyone_is_one = {0: 1, 1: 1}
    report = evaluate(truth, _rows(household, everyone_is_one),
                      _attributions(household, everyone_is_one, 1.0), [], {1: "acct"},
                      split_ms=SPLIT, final_members={1: 1})  # fmt: skip
    overall = report["overall"]
    assert overall["accuracy"] == overall["baseline_accuracy"] < 1.0
    assert report["member_count"]["mean_signed_error"] == -1.0


def test_a_change_is_found_by_the_first_alarm_of_its_kind_and_other_alarms_are_false() -> None:
    household = _household(Change("join", 1, 3 * WEEK_MS))
    truth = truth_of([household])
    names = {1: 1, 0: 2}

    def drift(at: int, kind: str = "join") -> DriftEvent:
        return DriftEvent(1, at, 20, 2, 0.001, 1, kind, 2)

    soon, late = 3 * WEEK_MS + 2 * DAY_MS, 7 * WEEK_MS
    for events, detected, false in (
        ([drift(soon)], 1, 0),
        ([drift(late)], 0, 0),  # found too late: missed, yet not a false alarm
        ([drift(WEEK_MS), drift(soon)], 1, 1),  # an alarm before the change is false
        ([drift(soon, "leave")], 0, 1),  # nobody left
        ([drift(soon), drift(soon + DAY_MS)], 1, 1),  # the same join twice
    ):
        found = evaluate(truth, _rows(household, names), [], events, {1: "acct"},
                         split_ms=SPLIT, final_members={1: 2})["drift"]  # fmt: skip
        assert (found["changes"], found["detected"], found["false_alarms"]) == (1, detected, false)
        assert found["joins"] == {
            "changes": 1,
            "detected": detected,
            "median_delay_days": 2.0 if detected else None,
        }
        assert found["leaves"]["changes"] == 0
        # 21 sessions before the join: it counts among the changes of settled accounts too.
        assert found["after_settled_account"]["joins"] == {"changes": 1, "detected": detected}


def test_changes_in_an_accounts_first_sessions_are_left_out_of_the_settled_breakdown() -> None:
    household = _household(Change("leave", 1, 5 * DAY_MS))
    found = evaluate(truth_of([household]), _rows(household, {1: 1, 0: 2}), [],
                     [DriftEvent(1, 9 * DAY_MS, 9, 4, 0.001, 2, "leave", 1)], {1: "acct"},
                     split_ms=SPLIT, final_members={1: 2})["drift"]  # fmt: skip
    assert found["leaves"] == {"changes": 1, "detected": 1, "median_delay_days": 4.0}
    assert found["after_settled_account"] == {
        "sessions_before": 15,
        "joins": {"changes": 0, "detected": 0},
        "leaves": {"changes": 0, "detected": 0},
    }
