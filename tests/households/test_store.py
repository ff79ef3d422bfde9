from __future__ import annotations

from pathlib import Path

from bond.storage.sqlite import connect
from engine.households import store
from engine.households.calibration import load
from engine.households.processor import HouseholdProcessor
from tests.households.support import event_batches, feed, simulated


def test_a_person_shows_members_profiles_attributions_and_drift(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.db", durable=False)
    store.migrate_households(conn)
    families = [h for h in simulated(10, seed=31, difficulty=0.1) if h.size >= 2]
    feed(conn, HouseholdProcessor(load()), event_batches(families, 500))
    person = max(
        {a.person_id for a in store.attributions(conn)},
        key=lambda p: len(store.attributions(conn, p)),
    )
    shown = store.person_households(conn, person)
    listed = conn.execute(
        "SELECT member_id FROM households_members WHERE person_id = ? ORDER BY member_id",
        (person,),
    ).fetchall()
    assert [m["member"] for m in shown["members"]] == [m for (m,) in listed]
    for member in shown["members"]:
        assert 0 <= member["typical_hour"] < 24 and 0 <= member["weekend_share"] <= 1
        assert member["devices"] and member["top_categories"]
    assert shown["attributions"]
    for order in shown["attributions"]:
        assert order["probability"] == max(order["probabilities"].values())
        assert all(0 < p <= 1 for p in order["probabilities"].values())
        # Each value is rounded (and kept above 0), so the sum is 1 to within that.
        whole = sum(order["probabilities"].values()) + order["not_told_apart"]
        assert abs(whole - 1) <= 0.001 * (len(order["probabilities"]) + 1)
    assert all(set(e) >= {"at_ms", "kind", "member_id", "p_value"} for e in shown["drift"])


def test_nobody_modelled_shows_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.db", durable=False)
    store.migrate_households(conn)
    assert store.person_households(conn, 42) == {
        "person_id": 42,
        "members": [],
        "attributions": [],
        "drift": [],
    }
