"""People: search, a person's page, the stitched timeline with its anonymous part marked, and
orders — read through the real worker's state, as the dashboard serves them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bond.errors import BadRequest, NotFound
from conftest import ADMIN_TOKEN
from engine.alerts import person
from engine.alerts.money import Amounts
from engine.dashboard import people
from engine.timeline import Cursor
from tests.engine.dashboard.dashboard_support import Client, HookedEngine, dashboard, log_in
from tests.engine.harness import append_pages

# More events than the alerts read for a cart or the last steps (HISTORY_LIMIT), and than the
# person page once looked for orders among.
LONG = 5_100


@pytest.fixture
def shop(data_dir: Path) -> Iterator[HookedEngine]:
    """Ada browses on her laptop, buys, then logs in on her phone; later Bob logs in on the
    same laptop without a reset (a shared computer)."""
    engine = HookedEngine(data_dir)
    engine.page("laptop", 1_000, "/")
    engine.view("laptop", 2_000, "Indigo Bowl", 32)
    engine.identify("laptop", 3_000, user="u-ada", email="Ada@Example.com")
    engine.order("laptop", 4_000, "FK-1", 66)
    engine.page("laptop", 5_000, "/thanks.html")
    engine.page("phone", 6_000, "/cart.html")
    engine.identify("phone", 7_000, email="ada@example.com")
    engine.page("phone", 8_000, "/account.html")
    engine.identify("laptop", 9_000, email="bob@example.com")
    engine.page("laptop", 10_000, "/")
    engine.run()
    yield engine
    engine.close()


def marks(engine: HookedEngine, email: str) -> list[tuple[int, str | None, bool]]:
    person_id = people.search(engine.reader, email)
    page = people.timeline_page(engine.reader, person_id, 100, None)
    return [(e["timestamp"], e["anonymous_id"], e["stitched"]) for e in page["events"][::-1]]


def test_the_anonymous_past_of_each_browser_is_marked_stitched(shop: HookedEngine) -> None:
    assert marks(shop, "ada@example.com") == [
        (1_000, "laptop", True),
        (2_000, "laptop", True),
        (3_000, "laptop", False),  # the identify itself
        (4_000, "laptop", False),
        (5_000, "laptop", False),
        (6_000, "phone", True),  # the phone's visit before its login was stitched too
        (7_000, "phone", False),
        (8_000, "phone", False),
    ]
    # Bob's part of the shared laptop starts at his login: nothing of his was anonymous.
    assert marks(shop, "bob@example.com") == [(9_000, "laptop", False), (10_000, "laptop", False)]


def test_a_browser_logged_in_from_its_first_event_has_nothing_stitched(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    engine.identify("laptop", 1_000, user="u-ada")
    # The tablet's first event already carries the user id (a server-rendered login, or the
    # SDK after identify in another tab): none of it was ever anonymous.
    engine.track("tablet", 2_000, user="u-ada")
    engine.track("tablet", 3_000, user="u-ada")
    engine.run()
    person_id = people.search(engine.reader, "u-ada")
    page = people.timeline_page(engine.reader, person_id, 10, None)
    assert [(e["anonymous_id"], e["stitched"]) for e in page["events"][::-1]] == [
        ("laptop", False),
        ("tablet", False),
        ("tablet", False),
    ]
    engine.close()


def test_an_anonymous_visitor_has_nothing_stitched(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    engine.page("tablet", 1_000, "/")
    engine.run()
    person_id = people.search(engine.reader, "tablet")
    page = people.timeline_page(engine.reader, person_id, 10, None)
    assert [e["stitched"] for e in page["events"]] == [False]
    assert page["identified"] is False
    engine.close()


def test_search_finds_by_email_user_id_or_anonymous_id(shop: HookedEngine) -> None:
    ada = people.search(shop.reader, "  ADA@example.com ")
    assert people.search(shop.reader, "u-ada") == ada
    assert people.search(shop.reader, "phone") == ada
    with pytest.raises(NotFound, match="nobody has that email"):
        people.search(shop.reader, "nobody@example.com")
    with pytest.raises(BadRequest, match="type an email"):
        people.search(shop.reader, "   ")


def test_the_person_page_names_identifiers_browsers_and_identity_events(
    shop: HookedEngine,
) -> None:
    ada = people.search(shop.reader, "ada@example.com")
    page = people.person_page(shop.reader, ada)
    assert page["label"] == {"id": ada, "name": "ada@example.com", "identified": True}
    assert page["emails"] == ["ada@example.com"]
    assert page["user_ids"] == ["u-ada"]
    assert page["anonymous_ids"] == ["laptop", "phone"]
    assert {b["anonymous_id"]: b["identified_at"] for b in page["browsers"]} == {
        "laptop": 3_000,
        "phone": 7_000,
    }
    kinds = [(c["kind"], c["reason"]) for c in page["identity_events"]]
    assert kinds == [("refused", "shared_browser"), ("merged", None), ("identified", None)]
    refusal = page["identity_events"][0]
    assert refusal["person"]["name"] == "bob@example.com"
    assert refusal["other"]["name"] == "ada@example.com"
    assert page["household_members"] == 0


def test_a_persons_orders_and_their_total(shop: HookedEngine) -> None:
    ada = people.search(shop.reader, "ada@example.com")
    found = people.orders(shop.reader, ada)
    assert [(o["order_id"], o["value"], o["currency"]) for o in found["orders"]] == [
        ("FK-1", 66.0, "EUR")
    ]
    assert (found["totals"], found["complete"]) == ([{"currency": "EUR", "value": 66.0}], True)


def order_ids(found: dict[str, Any]) -> list[str]:
    return [order["order_id"] for order in found["orders"]]


def test_orders_older_than_a_long_history_are_listed_and_counted(data_dir: Path) -> None:
    """Ada's first orders (one placed anonymously on her phone, one her shop's server sent)
    lie under thousands of later page views; the API finds them from her phone's old id too."""
    engine = HookedEngine(data_dir)
    engine.order("phone", 1_000, "FK-1", 10)
    engine.identify("laptop", 2_000, user="u-ada")
    props = {"order_id": "FK-2", "value": 20, "currency": "EUR"}
    engine.send("track", user="u-ada", ts=3_000, event="Order Completed", properties=props)
    append_pages(engine.log, "laptop", range(10_000, 10_000 + LONG))
    engine.order("laptop", 20_000, "FK-3", 30)
    engine.identify("phone", 21_000, user="u-ada")
    engine.run()
    phone = engine.reader.find(anonymous_id="phone")
    (merged,) = [c for c in engine.reader.identity_events(10) if c["kind"] == "merged"]
    with dashboard(engine.config) as client:
        log_in(client)
        found = client.get(f"/dashboard/api/persons/{merged['other_person_id']}/orders").json()
    engine.close()
    assert (found["person_id"], order_ids(found)) == (phone, ["FK-3", "FK-2", "FK-1"])
    assert (found["totals"], found["complete"]) == ([{"currency": "EUR", "value": 60.0}], True)


def test_on_a_shared_computer_each_person_has_only_their_own_orders(data_dir: Path) -> None:
    """Alice and Bob take turns on one browser without logging out; Alice's first order is
    older than her newest thousands of events. Her page and her alerts count the same orders."""
    engine = HookedEngine(data_dir)
    engine.identify("family-pc", 1_000, user="alice")
    engine.order("family-pc", 2_000, "A-1", 40)
    engine.identify("family-pc", 3_000, user="bob")
    engine.order("family-pc", 4_000, "B-1", 7)
    engine.identify("family-pc", 5_000, user="alice")
    append_pages(engine.log, "family-pc", range(10_000, 10_000 + LONG))
    engine.order("family-pc", 20_000, "A-2", 2)
    engine.run()
    found = {}
    for user in ("alice", "bob"):
        person_id = engine.reader.find(user_id=user)
        assert person_id is not None
        loaded = person.load_person(engine.worker.conn, person_id)
        assert loaded is not None
        found[user] = (order_ids(people.orders(engine.reader, person_id)), loaded.lifetime_value)
    engine.close()
    assert found == {
        "alice": (["A-2", "A-1"], Amounts({"EUR": 42.0})),
        "bob": (["B-1"], Amounts({"EUR": 7.0})),
    }


def test_past_the_bound_on_orders_the_newest_are_shown_and_marked_incomplete(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(person, "ORDER_LIMIT", 2)
    engine = HookedEngine(data_dir)
    engine.identify("laptop", 1_000, user="u-ada")
    for ts in (2_000, 3_000, 4_000):
        engine.order("laptop", ts, f"FK-{ts}", 5)
    engine.run()
    found = people.orders(engine.reader, engine.person(user_id="u-ada")["id"])
    engine.close()
    assert (order_ids(found), found["complete"], found["scanned"]) == (
        ["FK-4000", "FK-3000"],
        False,
        2,
    )
    assert found["totals"] == [{"currency": "EUR", "value": 10.0}]


def test_orders_in_different_currencies_are_summed_per_currency(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    engine.identify("laptop", 1_000, user="u-ada")
    for ts, value, currency in ((2_000, 100, "EUR"), (3_000, 15, "usd"), (4_000, 5, "eur")):
        props = {"order_id": f"o-{ts}", "value": value, "currency": currency}
        engine.send("track", anon="laptop", ts=ts, event="Order Completed", properties=props)
    engine.send("track", anon="laptop", ts=5_000, event="Order Completed", properties={"total": 7})
    engine.run()
    found = people.orders(engine.reader, engine.person(user_id="u-ada")["id"])
    engine.close()
    assert [o["currency"] for o in found["orders"]] == [None, "EUR", "USD", "EUR"]
    assert found["totals"] == [
        {"currency": "EUR", "value": 105.0},
        {"currency": "USD", "value": 15.0},
        {"currency": None, "value": 7.0},
    ]


def test_timeline_pages_follow_each_other_without_gaps(shop: HookedEngine) -> None:
    ada = people.search(shop.reader, "ada@example.com")
    seen: list[int] = []
    cursor = None
    while True:
        page = people.timeline_page(shop.reader, ada, 3, cursor)
        seen += [e["timestamp"] for e in page["events"]]
        if page["next"] is None:
            break
        cursor = Cursor.decode(page["next"])
    assert seen == [8_000, 7_000, 6_000, 5_000, 4_000, 3_000, 2_000, 1_000]


@pytest.fixture
def client(shop: HookedEngine) -> Iterator[Client]:
    with dashboard(shop.config) as running:
        log_in(running)
        yield running


def test_the_api_resolves_merged_ids_and_explains_what_it_cannot_find(
    client: Client, shop: HookedEngine
) -> None:
    merged = next(c for c in shop.reader.identity_events(10) if c["kind"] == "merged")
    page = client.get(f"/dashboard/api/persons/{merged['other_person_id']}").json()
    assert page["id"] == merged["person_id"]

    missing = client.get("/dashboard/api/persons/999")
    assert (missing.status_code, missing.json()["reason"]) == (404, "no person 999")
    assert client.get(f"/dashboard/api/persons/{2**70}").status_code == 404
    bad = client.get(f"/dashboard/api/persons/{page['id']}/timeline", params={"before": "x"})
    assert bad.status_code == 400
    assert "cursor" in bad.json()["reason"]
    found = client.get("/dashboard/api/people/search", params={"q": "nobody"})
    assert found.status_code == 404
    assert "nobody has that" in found.json()["reason"]


def test_the_people_list_is_most_recently_active_first_and_pages_on(
    client: Client, shop: HookedEngine
) -> None:
    first = client.get("/dashboard/api/people", params={"limit": 1}).json()
    (bob,) = first["people"]
    assert (bob["label"], bob["emails"], bob["last_seen"], bob["event_count"]) == (
        {"id": bob["id"], "name": "bob@example.com", "identified": True},
        ["bob@example.com"],
        10_000,
        2,
    )
    second = client.get("/dashboard/api/people", params={"limit": 1, "before": first["next"]})
    (ada,) = second.json()["people"]
    assert (ada["label"]["name"], ada["user_ids"], ada["verified"]) == (
        "ada@example.com",
        ["u-ada"],
        False,
    )
    assert second.json()["next"] is None

    bad = client.get("/dashboard/api/people", params={"before": "8000"})
    assert (bad.status_code, bad.json()["reason"]) == (
        400,
        "before must be the 'next' of a previous page of people",
    )
    with dashboard(shop.config) as stranger:
        assert stranger.get("/dashboard/api/people").status_code == 401
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert stranger.get("/dashboard/api/people", headers=bearer).status_code == 401
