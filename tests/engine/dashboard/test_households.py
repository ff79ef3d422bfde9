"""Households: the shared accounts the worker's model found, paged, and one account's members,
attributed orders and drift — from simulated families sent through the real worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bond.simulate.households import Settings, generate
from bond.storage.sqlite import connect
from engine.dashboard.households import household, households_page, member_count
from engine.schema import migrate_identity
from engine.timeline import IdentityReader
from tests.engine.dashboard.dashboard_support import HookedEngine

WEEK_MS = 7 * 86_400_000


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookedEngine]:
    settings = Settings(households=8, weeks=8, difficulty=0.1, seed=3, start_ms=1_700_000_000_000)
    engine = HookedEngine(tmp_path_factory.mktemp("families") / "bond-data")
    engine.households([h for h in generate(settings) if h.size >= 2])
    engine.run()
    yield engine
    engine.close()


def test_shared_accounts_are_listed_newest_first_a_page_at_a_time(
    families: HookedEngine,
) -> None:
    everything = households_page(families.reader, 200, None)["households"]
    assert len(everything) >= 2
    assert all(h["members"] >= 2 for h in everything)
    assert all(h["person"]["identified"] for h in everything)
    assert all(h["sessions"] > 0 for h in everything)
    ids = [h["person"]["id"] for h in everything]
    assert ids == sorted(ids, reverse=True)

    first = households_page(families.reader, 1, None)
    second = households_page(families.reader, 1, first["next"])
    assert [h["person"]["id"] for h in first["households"] + second["households"]] == ids[:2]


def test_a_household_shows_members_with_profiles_and_each_orders_probabilities(
    families: HookedEngine,
) -> None:
    listed = households_page(families.reader, 200, None)["households"]
    busiest = max(listed, key=lambda h: h["orders"])
    found = household(families.reader, busiest["person"]["id"])

    assert found["person"] == busiest["person"]
    assert len(found["members"]) == busiest["members"]
    assert member_count(families.reader, busiest["person"]["id"]) == busiest["members"]
    for member in found["members"]:
        assert 0 <= member["typical_hour"] < 24
        assert member["devices"] and member["top_categories"]
    assert len(found["attributions"]) == busiest["orders"] > 0
    for order in found["attributions"]:
        assert order["order_id"]
        assert all(0 < p <= 1 for p in order["probabilities"].values())
        assert order["probability"] == max(order["probabilities"].values())
    assert isinstance(found["drift"], list)


def test_before_the_worker_made_the_household_tables_there_is_nothing_to_show(
    data_dir: Path,
) -> None:
    conn = connect(data_dir / "state.db", durable=False)
    migrate_identity(conn)
    reader = IdentityReader(conn)
    assert households_page(reader, 50, None) == {"households": [], "next": None}
    assert member_count(reader, 1) == 0
    conn.close()
