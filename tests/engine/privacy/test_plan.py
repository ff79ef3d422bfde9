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
    event,
    found_in_bytes,
    found_in_tables,
    post,
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
