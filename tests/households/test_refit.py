from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from engine.households.features import SessionFeatures
from engine.households.model import HouseholdModel
from engine.households.refit import PHONE_SHARING, phone_log_prior, refit
from tests.households.support import person_session


def _fit(sessions: list[SessionFeatures], model: HouseholdModel | None = None) -> HouseholdModel:
    return refit(model or HouseholdModel(), sessions, np.ones(len(sessions))).model


def _member_of(model: HouseholdModel, f: SessionFeatures) -> int:
    return model.member_ids[int(np.argmax(model.logits(f)))]


def test_a_one_member_account_stays_one_member() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        # One person on a phone and a laptop, evenings and lunch, varied tastes: one person.
        sessions = [
            person_session(
                rng,
                20.5 if rng.random() < 0.7 else 12.5,
                *(("phone", "mobile") if rng.random() < 0.6 else ("laptop", "desktop")),
                ["books", "garden", "kitchen", "home"],
            )
            for _ in range(60)
        ]
        assert _fit(sessions).k == 1


def test_two_distinct_members_are_told_apart_and_attributed() -> None:
    rng = np.random.default_rng(3)
    parent = [
        person_session(rng, 9.0, "parent-phone", "mobile", ["garden", "books"]) for _ in range(30)
    ]
    teen = [
        person_session(rng, 22.0, "teen-phone", "mobile", ["gaming", "fashion"]) for _ in range(30)
    ]
    model = _fit(parent + teen)
    assert model.k == 2
    parent_member = _member_of(model, parent[0])
    assert all(_member_of(model, s) == parent_member for s in parent)
    assert all(_member_of(model, s) != parent_member for s in teen)


def test_member_ids_carry_across_refits() -> None:
    rng = np.random.default_rng(9)
    a = [person_session(rng, 9.0, "pa", "mobile", ["garden"]) for _ in range(25)]
    b = [person_session(rng, 22.0, "pb", "mobile", ["gaming"]) for _ in range(25)]
    first = _fit(a + b)
    member_of_a = _member_of(first, a[0])
    second = refit(first, b + a, np.ones(50))
    assert second.new_members == []
    assert _member_of(second.model, a[0]) == member_of_a


def test_phones_used_at_once_by_one_member_cost_but_a_replaced_phone_does_not() -> None:
    one_phone_each = [[(0, 30)], [(2, 39)]]
    two_at_once = [[(0, 30), (2, 39)]]
    replaced = [[(0, 19), (20, 39)]]
    assert phone_log_prior(one_phone_each) == 0.0
    assert phone_log_prior(replaced) == 0.0
    assert phone_log_prior(two_at_once) == math.log(PHONE_SHARING)
    assert phone_log_prior([[(0, 10), (5, 20), (8, 30)]]) == 2 * math.log(PHONE_SHARING)


def test_two_phones_in_use_at_once_tip_look_alikes_into_two_members() -> None:
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        tastes = ["home", "kitchen", "books", "garden", "grocery"]
        alike = [person_session(rng, 20.0, "x", "mobile", tastes) for _ in range(40)]
        # The very same sessions: on two phones used side by side, then on one phone whose
        # browser id changed halfway. Only the first is evidence of a second person.
        side_by_side = [replace(f, device="a" if i % 2 else "b") for i, f in enumerate(alike)]
        one_after_other = [replace(f, device="a" if i < 20 else "b") for i, f in enumerate(alike)]
        assert _fit(side_by_side).k == 2
        assert _fit(one_after_other).k == 1


def test_a_fifth_person_is_a_member_of_their_own() -> None:
    # Four people and one who joined them, each on a phone of their own at their own hours.
    rng = np.random.default_rng(11)
    people = [
        (7.0, ["garden", "books"]),
        (11.0, ["kitchen", "home"]),
        (15.0, ["toys", "sports"]),
        (19.0, ["beauty", "fashion"]),
        (23.0, ["gaming", "electronics"]),
    ]
    sessions = [
        person_session(rng, hour, f"phone-{i}", "mobile", tastes)
        for _ in range(30)
        for i, (hour, tastes) in enumerate(people)
    ]
    model = HouseholdModel()
    for _ in range(6):  # a refit moves the count by one at most
        model = refit(model, sessions, np.ones(len(sessions))).model
    assert model.k == 5
    members = {_member_of(model, s) for s in sessions[:5]}
    assert len(members) == 5
