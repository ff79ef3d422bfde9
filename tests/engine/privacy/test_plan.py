"""What an erasure finds of a person in the rejected table: refused events as their clients
wrote them, through the real collector and worker."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from conftest import WRITE_KEY, Collector
from tests.engine.privacy.privacy_support import (
    ANN_EMAIL,
    ANN_NEEDLES,
    ANN_PHONE,
    ANN_USER,
    BOB_EMAIL,
    BOB_USER,
    event,
    found_in_bytes,
    found_in_tables,
    post,
    run_cli,
    stack,
    two_people,
)


def post_as_python_client(collector: Collector, messages: list[dict[str, Any]]) -> None:
    """A batch as segment-analytics-python sends it: json.dumps with its default `": "`."""
    response = httpx.post(
        f"{collector.url}/v1/batch",
        content=json.dumps({"batch": messages}),
        headers={"Content-Type": "application/json"},
        auth=(WRITE_KEY, ""),
        timeout=30,
    )
    # Every event is refused on purpose: the answer is 400, and the rows are kept all the same.
    assert response.status_code == 400, response.text
    assert len(response.json()["rejected"]) == len(messages)


def rejected_bodies(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "events.db") as conn:
        return [bytes(r[0]).decode() for r in conn.execute("SELECT body FROM rejected")]


def test_erasure_deletes_refused_events_a_python_client_sent(data_dir: Path) -> None:
    with stack(data_dir) as running:
        assert post(running.collector, two_people()).status_code == 200
        post_as_python_client(
            running.collector,
            [
                # A track without an event name and an unreadable time: both refused.
                event(20, "track", 7, userId=ANN_USER, properties={"amount": 11}),
                {**event(21, "track", 8, userId=ANN_USER, event="X"), "timestamp": "soon"},
                event(22, "identify", 9, anonymousId=ANN_PHONE, traits="not an object"),
                event(23, "alias", 10, previousId=ANN_PHONE),
            ],
        )
        running.caught_up()
        assert len(found_in_tables(data_dir, (ANN_USER, ANN_PHONE))) > 4

        erasure = running.erase(email=ANN_EMAIL)

        assert erasure["result"]["counts"]["rejected_events"] == 5
        assert found_in_tables(data_dir, ANN_NEEDLES) == []
        assert found_in_bytes(data_dir, ANN_NEEDLES) == []


def test_erasure_finds_a_numeric_user_id_and_no_longer_one(data_dir: Path) -> None:
    with stack(data_dir) as running:
        assert (
            post(
                running.collector,
                [
                    event(1, "identify", 0, anonymousId="b-42", userId="42"),
                    event(2, "identify", 1, anonymousId="b-421", userId="421"),
                ],
            ).status_code
            == 200
        )
        # A server sending its user ids as numbers, in events refused for another reason.
        post_as_python_client(
            running.collector,
            [
                event(3, "track", 2, userId=42, properties={"n": 1}),
                event(4, "track", 3, userId=421, properties={"n": 2}),
            ],
        )
        running.caught_up()

        erasure = running.erase(user_id="42")

        assert erasure["result"]["counts"]["rejected_events"] == 1
        [kept] = rejected_bodies(data_dir)
        assert json.loads(kept)["userId"] == 421  # someone else's refused event stays


def test_erasure_takes_the_browsers_she_identified_on_that_the_worker_has_not_applied(
    data_dir: Path,
) -> None:
    tablet, laptop = "ann-tablet-31f0", "ann-laptop-77c2"
    with stack(data_dir) as running:
        assert post(running.collector, two_people()).status_code == 200
        # Her laptop's browsing is applied as an anonymous visitor's, then the worker stops
        # (a deploy, a crash) while she logs in there and browses and logs in on a tablet.
        post(running.collector, [event(30, "page", 90, anonymousId=laptop, name="Sale")])
        running.caught_up()
        running.worker.stop()
        waiting = [
            event(31, "identify", 91, anonymousId=laptop, traits={"email": ANN_EMAIL}),
            event(32, "page", 100, anonymousId=tablet, name="Wishlist of ann-tablet"),
            event(33, "track", 101, anonymousId=tablet, event="Product Viewed"),
            event(34, "identify", 102, anonymousId=tablet, traits={"email": ANN_EMAIL}),
            # Bob, logged in on his own tablet, types her email into a gift form: his user id
            # wins, so that tablet is not hers.
            event(36, "page", 103, anonymousId="bob-tablet", name="Gifts"),
            event(
                37,
                "identify",
                104,
                anonymousId="bob-tablet",
                userId=BOB_USER,
                traits={"email": ANN_EMAIL},
            ),
        ]
        assert post(running.collector, waiting).status_code == 200
        bob_before = running.timeline(running.person(email=BOB_EMAIL)["id"])  # type: ignore[index]

        erased = run_cli(data_dir, "erase", ANN_EMAIL, env=running.env)
        assert erased.returncode == 0, erased.stderr
        running.restart_worker()
        running.caught_up()

        assert found_in_tables(data_dir, (*ANN_NEEDLES, tablet, laptop)) == []
        assert running.person(anonymous_id=tablet) is None
        assert running.person(anonymous_id=laptop) is None
        # His gift-form login stands (his user id won, as in the graph): his tablet is his, but
        # nothing of it keeps her email, neither the event nor the trait it set.
        bob = running.person(email=BOB_EMAIL)
        assert bob is not None and running.person(anonymous_id="bob-tablet") == bob
        assert bob["traits"].get("email") != ANN_EMAIL
        bob_after = running.timeline(bob["id"])
        assert all(e in bob_after for e in bob_before)
        assert [e["event"] for e in bob_after if e not in bob_before] == ["Gifts"]
        # The tablet is hers: what it sends later is dropped too.
        post(running.collector, [event(35, "page", 200, anonymousId=tablet, name="Again")])
        running.caught_up()
        assert running.person(anonymous_id=tablet) is None
