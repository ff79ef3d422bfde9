from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bond.errors import ConfigError
from bond.simulate.households import Settings
from bond.simulate.offline import calibrate, run
from engine.households.calibration import Calibration, load, save


def test_calibration_fitted_on_some_households_holds_on_others() -> None:
    fitted = calibrate(Settings(households=200, seed=501))
    result = run(Settings(households=200, seed=502), fitted)
    held_out = result.report()["overall"]
    raw = result.report(Calibration())["overall"]
    # The raw mixture is overconfident; calibrated, its confidence is about its accuracy.
    assert raw["mean_confidence"] - raw["accuracy"] > 0.05
    assert abs(held_out["mean_confidence"] - held_out["accuracy"]) < 0.03
    assert held_out["ece"] < min(raw["ece"], 0.06)
    assert fitted.fitted_on["seed"] == 501


def test_calibration_round_trips_through_its_file(tmp_path: Path) -> None:
    calibration = Calibration(1.5, (0.0, 20.0), (0.7, 0.95), (0.5, 0.9, 1.0), (0.55, 0.8, 0.95))
    save(calibration, tmp_path / "c.json")
    assert load(tmp_path / "c.json") == calibration
    assert load(tmp_path / "missing.json") == Calibration()
    (tmp_path / "bad.json").write_text('{"temperature": 1.0}')
    with pytest.raises(ConfigError, match=r"bad\.json"):
        load(tmp_path / "bad.json")


def test_calibrated_probabilities_leave_room_for_an_unseen_member() -> None:
    calibration = Calibration(2.0, (0.0, 40.0), (0.6, 0.9), (0.5, 1.0), (0.5, 0.9))
    probs = calibration.probabilities(np.array([0.0, -3.0, -5.0]), 30)
    assert np.isclose(probs.sum(), 1.0) and probs.argmax() == 0 and probs[0] <= 0.9


def test_a_one_member_account_is_trusted_more_as_its_sessions_add_up() -> None:
    calibration = Calibration(1.0, (0.0, 40.0), (0.6, 0.9))
    early = calibration.probabilities(np.array([0.0]), 5)
    late = calibration.probabilities(np.array([0.0]), 80)
    assert 0.6 <= early[0] < late[0] == 0.9
