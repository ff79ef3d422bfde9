from __future__ import annotations

import math

import numpy as np

from engine.households.features import SessionFeatures
from engine.households.model import HouseholdModel, refit


def _session(
    rng: np.random.Generator, hour: float, device: str, kind: str, tastes: list[str]
) -> SessionFeatures:
    h = (hour + rng.normal(0, 1.0)) % 24
    angle = 2 * math.pi * h / 24
    picks = rng.choice(tastes, size=3)
    counts: dict[str, float] = {}
    for p in picks:
        counts[str(p)] = counts.get(str(p), 0.0) + 1.0
    return SessionFeatures(
        math.sin(angle),
        math.cos(angle),
        float(rng.random() < 2 / 7),
        device,
        kind,
        tuple(sorted(counts.items())),
    )


def _fit(sessions: list[SessionFeatures]) -> HouseholdModel:
    return refit(HouseholdModel(), sessions, np.ones(len(sessions)))


def test_a_one_member_account_stays_one_member() -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        # One person on a phone and a laptop, evenings, varied tastes: still one person.
        sessions = [
            _session(
                rng,
                20.5 if rng.random() < 0.7 else 12.5,
                "phone" if rng.random() < 0.6 else "laptop",
                "mobile",
                ["books", "garden", "kitchen", "home"],
            )
            for _ in range(60)
        ]
        assert _fit(sessions).k == 1


def test_two_distinct_members_are_told_apart_and_attributed() -> None:
    rng = np.random.default_rng(3)
    parent = [_session(rng, 9.0, "parent-phone", "mobile", ["garden", "books"]) for _ in range(30)]
    teen = [_session(rng, 22.0, "teen-phone", "mobile", ["gaming", "fashion"]) for _ in range(30)]
    model = _fit(parent + teen)
    assert model.k == 2
    parent_member = int(np.argmax(model.logits(parent[0])))
    assert all(int(np.argmax(model.logits(s))) == parent_member for s in parent)
    assert all(int(np.argmax(model.logits(s))) != parent_member for s in teen)


def test_online_updates_keep_member_ids_and_survive_serialisation() -> None:
    rng = np.random.default_rng(5)
    a = [_session(rng, 9.0, "pa", "mobile", ["garden"]) for _ in range(20)]
    b = [_session(rng, 22.0, "pb", "mobile", ["gaming"]) for _ in range(20)]
    model = _fit(a + b)
    ids = list(model.member_ids)
    for s in a[:5] + b[:5]:
        model.update(s)
    restored = HouseholdModel.from_dict(model.to_dict())
    assert restored.member_ids == ids
    np.testing.assert_allclose(restored.logits(a[0]), model.logits(a[0]))
    profiles = {p["member"]: p for p in restored.profiles()}
    hours = sorted(p["typical_hour"] for p in profiles.values())
    assert abs(hours[0] - 9.0) < 1.5 and abs(hours[1] - 22.0) < 1.5


def test_refit_carries_member_ids_across_refits() -> None:
    rng = np.random.default_rng(9)
    a = [_session(rng, 9.0, "pa", "mobile", ["garden"]) for _ in range(25)]
    b = [_session(rng, 22.0, "pb", "mobile", ["gaming"]) for _ in range(25)]
    first = _fit(a + b)
    member_of_a = first.member_ids[int(np.argmax(first.logits(a[0])))]
    second = refit(first, b + a, np.ones(50))
    assert second.member_ids[int(np.argmax(second.logits(a[0])))] == member_of_a
