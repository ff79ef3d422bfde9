"""The read API in-process on a state built by the real worker: auth, lookups, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conftest import ADMIN_TOKEN, WRITE_KEY
from engine.api import create_read_app
from tests.engine.harness import Engine

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class AppClient:
    """Synchronous requests to an ASGI app in this process (httpx's ASGI transport)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def get(
        self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        async def request() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bond") as client:
                return await client.get(path, params=params, headers=headers)

        return asyncio.run(request())


@pytest.fixture
def client(engine: Engine) -> Iterator[AppClient]:
    engine.config = replace(
        engine.config,
        admin_token=ADMIN_TOKEN,
        sources=(replace(engine.config.sources[0], write_key=WRITE_KEY),),
    )
    for ts in range(100, 107):
        engine.track("laptop", ts)
    engine.identify("laptop", 200, user="u1", email="Ada@Example.com")
    engine.track("phone", 300)
    engine.identify("phone", 400, email="ada@example.com")
    engine.identify("laptop", 500, user="u2")
    engine.run()
    yield AppClient(create_read_app(engine.config))


def get(client: AppClient, path: str, **params: Any) -> Any:
    response = client.get(f"/api{path}", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "Authorization: Bearer"),
        ({"Authorization": f"Bearer {WRITE_KEY}"}, 403, "write key"),
        ({"Authorization": "Bearer guess"}, 403, "not the admin token"),
        ({"Authorization": "Basic dGVzdC13cml0ZS1rZXk6"}, 401, "Authorization: Bearer"),
    ],
)
def test_only_the_admin_token_reads(
    client: AppClient, headers: dict[str, str], status: int, reason: str
) -> None:
    for path in ("/api/persons?user_id=u1", "/api/identity-events", "/api/status"):
        response = client.get(path, headers=headers)
        assert response.status_code == status
        assert reason in response.json()["reason"]


def test_no_admin_token_configured_disables_the_api(engine: Engine) -> None:
    unconfigured = AppClient(create_read_app(engine.config))
    response = unconfigured.get("/api/status", headers=AUTH)
    assert response.status_code == 403 and "BOND_ADMIN_TOKEN" in response.json()["reason"]


def test_lookup_by_email_user_id_and_anonymous_id(client: AppClient) -> None:
    by_email = get(client, "/persons", email=" ADA@example.com")
    assert get(client, "/persons", user_id="u1") == by_email
    assert get(client, "/persons", anonymous_id="phone") == by_email
    assert get(client, f"/persons/{by_email['id']}") == by_email
    assert by_email["user_ids"] == ["u1"] and by_email["emails"] == ["ada@example.com"]
    assert by_email["anonymous_ids"] == ["laptop", "phone"]
    assert (by_email["first_seen"], by_email["event_count"]) == (100, 10)
    # The laptop changed hands at ts 500: its current owner is u2.
    assert get(client, "/persons", anonymous_id="laptop")["user_ids"] == ["u2"]


def test_lookup_errors_say_why(client: AppClient) -> None:
    missing = client.get("/api/persons", params={"email": "nobody@example.com"}, headers=AUTH)
    assert missing.status_code == 404 and "email" in missing.json()["reason"]
    ambiguous = client.get("/api/persons", params={"email": "a@b.co", "user_id": "x"}, headers=AUTH)
    assert ambiguous.status_code == 400
    assert client.get("/api/persons/999", headers=AUTH).status_code == 404
    bad = client.get("/api/persons/1/timeline", params={"before": "x"}, headers=AUTH)
    assert bad.status_code == 400 and "cursor" in bad.json()["reason"]


def test_timeline_pages_newest_first_without_gaps_or_repeats(client: AppClient) -> None:
    person = get(client, "/persons", user_id="u1")
    full = get(client, f"/persons/{person['id']}/timeline", limit=100)
    assert full["next"] is None and full["event_count"] == 10
    stamps = [e["timestamp"] for e in full["events"]]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 10

    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = get(client, f"/persons/{person['id']}/timeline", **params)
        seen += [e["seq"] for e in page["events"]]
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert seen == [e["seq"] for e in full["events"]]
    first = full["events"][0]
    assert (first["type"], first["anonymous_id"], first["traits"]) == (
        "identify",
        "phone",
        {"email": "ada@example.com"},
    )


def test_merged_person_ids_resolve_to_the_survivor(client: AppClient) -> None:
    merged = next(e for e in get(client, "/identity-events")["events"] if e["kind"] == "merged")
    survivor = get(client, f"/persons/{merged['other_person_id']}")
    assert survivor["id"] == merged["person_id"]


def test_identity_events_newest_first_with_refusals(client: AppClient) -> None:
    events = get(client, "/identity-events")["events"]
    assert [(e["kind"], e["reason"]) for e in events] == [
        ("refused", "shared_browser"),
        ("merged", None),
        ("identified", None),
    ]
    assert events[2]["anonymous_events_stitched"] == 7
    older = get(client, "/identity-events", limit=1, before=events[0]["id"])
    assert older["events"] == [events[1]]
    # A page that ends exactly at the oldest event points to no empty page after it.
    assert get(client, "/identity-events", limit=3)["next"] is None
    assert get(client, "/identity-events", limit=2)["next"] == events[1]["id"]
    person = events[1]["person_id"]
    assert len(get(client, "/identity-events", person_id=person)["events"]) == 3
    status = get(client, "/status")
    assert status["identity_changes"] == {"identified": 1, "merged": 1, "refused:shared_browser": 1}
    metrics = client.get("/api/metrics", headers=AUTH).text
    assert 'bond_identity_changes_total{kind="refused",reason="shared_browser"} 1' in metrics


def refused(client: AppClient, path: str, **params: Any) -> tuple[int, str, str]:
    response = client.get(f"/api{path}", params=params, headers=AUTH)
    body = response.json()
    return response.status_code, body["error"], body["reason"]


@pytest.mark.parametrize("limit", ["0", "-5", "501", "600", "100000", "99999999999999999999", ""])
@pytest.mark.parametrize("path", ["/persons/1/timeline", "/identity-events", "/alerts"])
def test_a_limit_outside_1_to_500_is_refused_not_capped(
    client: AppClient, path: str, limit: str
) -> None:
    status, error, reason = refused(client, path, limit=limit)
    assert (status, error) == (400, "bad_request") and "1 to 500" in reason
    assert get(client, path, limit=500)


IMPOSSIBLE_IDS = ["99999999999999999999", "9223372036854775808", "abc", "-1", "1_0", "²"]


@pytest.mark.parametrize("person", IMPOSSIBLE_IDS)
@pytest.mark.parametrize("suffix", ["", "/timeline", "/household", "/export"])
def test_a_person_id_no_person_can_have_is_not_found(
    client: AppClient, person: str, suffix: str
) -> None:
    assert refused(client, f"/persons/{person}{suffix}") == (
        404,
        "not_found",
        f"no person {person}",
    )


@pytest.mark.parametrize("erasure", IMPOSSIBLE_IDS)
def test_an_erasure_id_no_erasure_can_have_is_not_found(client: AppClient, erasure: str) -> None:
    assert refused(client, f"/erasures/{erasure}") == (404, "not_found", f"no erasure {erasure}")


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/persons/1/timeline", {"before": "1:99999999999999999999"}, "cursor"),
        ("/persons/1/timeline", {"before": "99999999999999999999:1"}, "cursor"),
        ("/persons/1/timeline", {"before": "-1:+1"}, "cursor"),
        ("/identity-events", {"before": "99999999999999999999"}, "before"),
        ("/identity-events", {"person_id": "99999999999999999999"}, "person_id"),
        ("/privacy/audit", {"limit": "²"}, "limit"),
    ],
)
def test_a_malformed_or_out_of_range_parameter_is_a_bad_request(
    client: AppClient, path: str, params: dict[str, str], named: str
) -> None:
    status, error, reason = refused(client, path, **params)
    assert (status, error) == (400, "bad_request") and named in reason


def test_status_says_how_much_of_the_log_the_worker_has_not_applied(
    engine: Engine, client: AppClient
) -> None:
    status = get(client, "/status")
    assert (status["log_head"], status["lag"], status["waiting_s"]) == (status["offset"], 0, None)
    engine.track("tablet", 600)  # received at 600 ms after the epoch, and never applied
    status = get(client, "/status")
    assert (status["log_head"], status["lag"]) == (status["offset"] + 1, 1)
    assert status["waiting_s"] > 86_400
