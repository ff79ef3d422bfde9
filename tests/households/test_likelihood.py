from __future__ import annotations

import numpy as np

from engine.households.likelihood import joint
from engine.households.model import HouseholdModel
from engine.households.refit import refit
from tests.households.support import person_session


def test_the_per_session_path_scores_exactly_as_the_batch_likelihood() -> None:
    rng = np.random.default_rng(11)
    people = [
        (9.0, "a-phone", "mobile", ["garden", "books"]),
        (22.0, "b-phone", "mobile", ["gaming", "fashion"]),
        (19.0, "shared", "desktop", ["home", "kitchen", "books"]),
    ]
    sessions = [person_session(rng, *people[i % 3]) for i in range(60)]
    model = refit(HouseholdModel(), sessions, np.ones(60)).model
    for f in sessions[:20]:
        model.update(f)
    assert model.k >= 2
    probes = [
        sessions[5],
        person_session(rng, 3.0, "never-seen", "tablet", ["garden", "health", "sports"]),
    ]
    for probe in probes:
        scalar = np.array(model.log_joint(probe))
        grown = HouseholdModel.from_dict(model.to_dict())
        grown.learn_vocabulary([probe])
        batch = joint(grown.stats(), grown.encode([probe]))
        np.testing.assert_allclose(scalar, batch[0], rtol=1e-10, atol=1e-10)
