from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.households.likelihood import joint, posterior, stats_of
from engine.households.model import DECAY, HouseholdModel
from tests.households.support import person_session


def _sessions(seed: int, n: int) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    return [
        person_session(rng, 20.0, f"phone-{i % 3}", "mobile", ["books", "garden", "toys"])
        for i in range(n)
    ]


def test_online_updates_fade_old_sessions_by_decay() -> None:
    sessions = _sessions(1, 40)
    model = HouseholdModel()
    for f in sessions:
        model.update(f)
    # One member: each session's responsibility is 1, so the state is the decayed sum.
    weights = DECAY ** np.arange(len(sessions))[::-1]
    expected = stats_of(model.encode(sessions), weights[:, None] * np.ones((40, 1)))
    actual = model.stats()
    for name in ("n", "s1", "s2", "weekend", "types", "devices", "categories"):
        np.testing.assert_allclose(getattr(actual, name), getattr(expected, name), rtol=1e-9)


def test_the_common_scale_is_multiplied_out_before_it_underflows() -> None:
    model = HouseholdModel()
    for f in _sessions(4, 800):  # 0.99 ** 800 is far below the rescaling threshold
        model.update(f)
    assert 1e-200 <= model.scale <= 1.0
    assert abs(float(model.stats().n.sum()) - (1 - DECAY**800) / (1 - DECAY)) < 1e-9


def test_a_model_survives_serialisation() -> None:
    model = HouseholdModel()
    for f in _sessions(5, 25):
        model.update(f)
    restored = HouseholdModel.from_dict(model.to_dict())
    probe = _sessions(6, 1)[0]
    assert restored.log_joint(probe) == model.log_joint(probe)
    restored.update(probe)
    model.update(probe)
    assert restored.to_dict() == model.to_dict()


def test_a_new_browser_and_new_categories_join_the_vocabulary_with_no_history() -> None:
    model = HouseholdModel()
    for f in _sessions(7, 10):
        model.update(f)
    rng = np.random.default_rng(8)
    newcomer = person_session(rng, 9.0, "tablet-1", "tablet", ["garden", "kitchen"])
    responsibilities, _ = model.update(newcomer)
    assert model.devices[-1] == "tablet-1" and "kitchen" in model.categories
    assert len(model.dev[0]) == len(model.devices) and len(model.cat[0]) == len(model.categories)
    assert np.isclose(sum(responsibilities), 1.0)


def test_responsibilities_of_the_online_step_are_the_batch_posterior() -> None:
    model = HouseholdModel()
    for f in _sessions(9, 12):
        model.update(f)
    probe = _sessions(10, 1)[0]
    online = model.log_joint(probe)
    model.learn_vocabulary([probe])
    data = model.encode([probe])
    resp, _ = posterior(joint(model.stats(), data))
    np.testing.assert_allclose(np.exp(online - np.logaddexp.reduce(online)), resp[0])


def test_someone_new_scores_every_hour_alike_and_their_own_browser_by_its_share() -> None:
    model = HouseholdModel()
    for f in _sessions(11, 30):
        model.update(f)
    rng = np.random.default_rng(12)
    morning = person_session(rng, 8.0, "phone-0", "mobile", ["books"])
    night = replace(morning, hour_sin=-morning.hour_sin, hour_cos=-morning.hour_cos)
    assert model.log_novel(morning, 0.7, ()) == model.log_novel(night, 0.7, ())
    new_browser = replace(morning, device="tablet-9")
    theirs = model.log_novel(morning, 0.7, {"phone-0"})
    assert model.log_novel(new_browser, 0.7, ()) == theirs
    # An old browser is the account's: 1 - own of the newcomer's sessions, by its use.
    used = model.stats().devices[:, 0].sum() / model.stats().n.sum()
    assert np.isclose(model.log_novel(morning, 0.7, ()) - theirs, np.log(0.3 * used) - np.log(0.7))
    one_view = replace(morning, categories=(("books", 1.0),))
    two_views = replace(morning, categories=(("books", 2.0),))
    assert np.isclose(
        model.log_novel(one_view, 0.7, ()) - model.log_novel(two_views, 0.7, ()),
        np.log(len(model.categories) + 1),  # every category alike, and one not seen yet
    )
