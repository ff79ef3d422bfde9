from __future__ import annotations

import numpy as np

from bond.simulate.households import Settings
from bond.simulate.offline import calibrate, run
from engine.households.calibration import Calibration, load, save
from engine.households.drift import CONFIRM_P, PageHinkley


def test_calibration_fitted_on_some_households_holds_on_others() -> None:
    fitted = calibrate(Settings(households=60, seed=501))
    held_out = run(Settings(households=60, seed=502), fitted).report()["overall"]
    raw = run(Settings(households=60, seed=502), Calibration()).report()["overall"]
    assert held_out["ece"] < raw["ece"]
    assert held_out["ece"] < 0.15
    assert fitted.temperature > 1.0  # the raw mixture is overconfident


def test_calibration_round_trips_through_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    calibration = Calibration(1.5, 0.8, (0.5, 0.9, 1.0), (0.55, 0.8, 0.95), {"seed": 1})
    save(calibration, tmp_path / "c.json")
    assert load(tmp_path / "c.json") == calibration
    assert load(tmp_path / "missing.json") == Calibration()


def test_calibrated_probabilities_leave_room_for_an_unseen_member() -> None:
    calibration = Calibration(2.0, 0.8, (0.5, 1.0), (0.5, 0.9))
    assert calibration.probabilities(np.array([0.0])).tolist() == [0.8]
    probs = calibration.probabilities(np.array([0.0, -3.0, -5.0]))
    assert np.isclose(probs.sum(), 1.0) and probs.argmax() == 0 and probs[0] <= 0.9


def test_page_hinkley_flags_a_scripted_change_and_the_test_confirms_it() -> None:
    rng = np.random.default_rng(0)
    detector = PageHinkley()
    for value in rng.normal(10.0, 1.0, 80):
        assert detector.add(float(value)) is None
    change, delay = None, 0
    for delay, value in enumerate(rng.normal(13.0, 1.0, 40), start=1):  # noqa: B007
        change = detector.add(float(value))
        if change is not None:
            break
    assert change is not None and delay <= 20
    assert change.p_value < CONFIRM_P
    assert change.change_at >= 75  # the change point estimate is near the real change (80)


def test_page_hinkley_stays_quiet_on_a_stable_household() -> None:
    rng = np.random.default_rng(1)
    detector = PageHinkley()
    assert all(detector.add(float(v)) is None for v in rng.normal(10.0, 2.0, 500))
