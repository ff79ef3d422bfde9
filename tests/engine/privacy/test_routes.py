"""The admin API's privacy calls: erasure requests checked and queued, their progress, and a
person's export with everything held about them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.engine.privacy.privacy_support import (
    ANN_EMAIL,
    ANN_USER,
    BOB_EMAIL,
    SHARED_LAPTOP,
    Stack,
    post,
    stack,
    two_people,
)


def two_people_applied(data_dir: Path) -> Iterator[Stack]:
    with stack(data_dir) as up:
        assert post(up.collector, two_people()).status_code == 200
        up.caught_up()
        yield up


@pytest.fixture
def running(data_dir: Path) -> Iterator[Stack]:
    yield from two_people_applied(data_dir)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """For requests refused before they change anything: one stack for all of them."""
    yield from two_people_applied(tmp_path_factory.mktemp("refused") / "bond-data")


def ask(running: Stack, body: object, token: str | None = "admin") -> httpx.Response:
    headers = running.api.headers if token == "admin" else {}
    return httpx.post(f"{running.api.url}/erasures", json=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "exactly one of email or user_id"),
        ({"email": ANN_EMAIL, "user_id": ANN_USER}, "exactly one of email or user_id"),
        ({"email": 42}, "exactly one of email or user_id"),
        ({"email": "not-an-email"}, "not a valid email"),
        ({"user_id": "undefined"}, "not a valid user id"),
        ({"user_id": ANN_USER, "requested_by": "x" * 101}, "requested_by"),
        (["email"], "JSON object"),
    ],
)
def test_bad_erasure_requests_are_refused_with_a_reason(
    unchanged: Stack, body: object, reason: str
) -> None:
    response = ask(unchanged, body)
    assert response.status_code == 400
    assert reason in response.json()["reason"]
    assert unchanged.person(email=ANN_EMAIL) is not None
    assert unchanged.api.get("/erasures/1").status_code == 404  # nothing was queued


def test_erasure_needs_the_admin_token_and_reports_progress(running: Stack) -> None:
    assert ask(running, {"email": ANN_EMAIL}, token=None).status_code == 401
    assert running.api.get("/erasures/999").status_code == 404

    response = ask(running, {"email": ANN_EMAIL, "requested_by": "dpo"})

    assert response.status_code == 202
    assert response.json()["url"] == f"/api/erasures/{response.json()['id']}"
    done = running.erase(user_id=ANN_USER)  # the same person: found nothing left by then
    first = running.api.get(f"/erasures/{response.json()['id']}").json()
    assert first["state"] == "done" and first["requested_by"] == "api:dpo"
    assert first["result"]["found"] is True and done["result"]["found"] is False
    entries = running.api.get("/privacy/audit").json()["entries"]
    assert [(e["action"], e["requested_by"]) for e in entries] == [
        ("erase", "api:admin"),
        ("erase", "api:dpo"),
    ]
    assert entries[1]["counts"] == first["result"]["counts"]
    assert "ann" not in str(entries).lower()  # counts and who asked, never whom it was about
    assert running.api.get("/privacy/audit", limit="0").status_code == 400


def test_the_export_holds_identifiers_timeline_changes_alerts_and_raw_events(
    running: Stack,
) -> None:
    bob = running.person(email=BOB_EMAIL)
    assert bob is not None

    response = running.api.get(f"/persons/{bob['id']}/export")

    assert response.status_code == 200, response.text
    # Streamed a page of events at a time, never built whole first.
    assert response.headers["transfer-encoding"] == "chunked"
    document = response.json()
    assert document["format"] == "bond-export/1"
    assert document["person"]["emails"] == [BOB_EMAIL]
    assert len(document["timeline"]) == bob["event_count"] == 4
    kinds = [(e["kind"], e["reason"]) for e in document["identity_events"]]
    assert ("refused", "shared_browser") in kinds  # his login on Ann's laptop, kept apart
    assert [a["rule"] for a in document["alerts"]] == ["everyone"]
    assert document["alerts"][0]["payload"]
    assert document["household"]["person_id"] == bob["id"]
    raw = document["raw_events"]
    assert len(raw) == 4 and all(e["ip"] for e in raw)
    # Only his part of the shared laptop: Ann's events there are not in his export.
    laptop = [e for e in raw if e["event"].get("anonymousId") == SHARED_LAPTOP]
    assert laptop and all(e["event"].get("userId") != ANN_USER for e in laptop)
    assert running.api.get("/persons/999999/export").status_code == 404
