"""Verified persons through the whole stack: a real collector, worker and read API over HTTP.

One stack serves the module: an open source (no signing) and a source that requires signed
identities, with alert rules that do and do not require a verified person. Each test uses its
own browsers and users, and waits for the worker to apply everything it sent.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest

from conftest import WRITE_KEY, BondProcess, Collector, ReadApi, start_worker, wait_until
from tests.signing_support import sign as signature_of
from tests.signing_support import sources

SECRET = "engine-test-secret"
SIGNED = "signed-write-key"
T0 = 1_780_000_000_000
CONFIG = f"""{sources(SIGNED, SECRET)}
[[alerts.rules]]
name = "any order"
kind = "event"
event = "Order Completed"

[[alerts.rules]]
name = "verified order"
kind = "event"
event = "Order Completed"
require_verified = true

[[alerts.rules]]
name = "verified identified"
kind = "identified"
require_verified = true
"""

_clock = itertools.count(1)


class Stack(NamedTuple):
    collector: Collector
    worker: BondProcess
    api: ReadApi


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("verification")
    (root / "bond.toml").write_text(CONFIG)
    env = {"BOND_CONFIG": str(root / "bond.toml")}
    data = root / "data"
    collector = Collector(data, env=env).start()
    worker = start_worker(data, env)
    api = ReadApi(data, env).start()
    yield Stack(collector, worker, api)
    api.stop()
    worker.stop()
    collector.stop()


def sign(value: str) -> str:
    return signature_of(value, SECRET)


def event(kind: str, anon: str, signature: str | None = None, **fields: Any) -> dict[str, Any]:
    """A message timed after every earlier one, so a browser's events keep their order."""
    at = datetime.fromtimestamp((T0 + next(_clock) * 1000) / 1000, UTC)
    message: dict[str, Any] = {"type": kind, "anonymousId": anon, "timestamp": at.isoformat()}
    if signature is not None:
        message["context"] = {"bond": {"signature": signature}}
    return {**message, **fields}


def send(stack: Stack, key: str, *messages: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.collector.url}/v1/batch",
        content=orjson.dumps({"writeKey": key, "batch": list(messages)}),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    applied(stack)
    return answer


def applied(stack: Stack) -> None:
    """Wait until the worker has applied everything the collector stored."""
    with closing(sqlite3.connect(Path(stack.collector.data_dir) / "events.db")) as conn:
        head = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    wait_until(
        lambda: stack.api.get("/status").json()["offset"] >= head, what="the worker to catch up"
    )


def person(stack: Stack, **query: str) -> dict[str, Any] | None:
    response = stack.api.get("/persons", **query)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def timeline(stack: Stack, person_id: int) -> list[tuple[str, str | None, str | None]]:
    """(type, event name, anonymous id) of the person's events, oldest first."""
    events = stack.api.get(f"/persons/{person_id}/timeline", limit="500").json()["events"]
    return [(e["type"], e["event"], e["anonymous_id"]) for e in events[::-1]]


def alerts_for(stack: Stack, person_id: int) -> list[str]:
    alerts = stack.api.get("/alerts", limit="500").json()["alerts"]
    return sorted(a["rule"] for a in alerts if a["person_id"] == person_id)


def test_a_signed_identify_stitches_the_anonymous_past_and_verifies_the_person(
    stack: Stack,
) -> None:
    send(
        stack,
        SIGNED,
        event("page", "anon-a", name="Home"),
        event("track", "anon-a", event="Product Viewed"),
    )
    send(stack, SIGNED, event("identify", "anon-a", sign("user-a"), userId="user-a"))

    found = person(stack, user_id="user-a")

    assert found is not None and found["verified"] is True
    assert timeline(stack, found["id"]) == [
        ("page", "Home", "anon-a"),
        ("track", "Product Viewed", "anon-a"),
        ("identify", None, "anon-a"),
    ]
    assert alerts_for(stack, found["id"]) == ["verified identified"]


def test_a_signed_email_verifies_the_person_it_names(stack: Stack) -> None:
    send(
        stack,
        SIGNED,
        event("identify", "anon-e", sign("erin@example.com"), traits={"email": "Erin@Example.com"}),
    )

    found = person(stack, email="erin@example.com")

    assert found is not None and found["verified"] is True


def test_an_unsigned_claim_on_someone_elses_email_gains_nothing(stack: Stack) -> None:
    victim_email = "victim@example.com"
    send(
        stack,
        SIGNED,
        event("page", "anon-victim", name="Account"),
        event("identify", "anon-victim", sign(victim_email), traits={"email": victim_email}),
    )
    victim = person(stack, email=victim_email)
    assert victim is not None
    history = timeline(stack, victim["id"])
    alerts_before = alerts_for(stack, victim["id"])

    answer = send(
        stack,
        SIGNED,
        event("page", "anon-spoofer", name="Home"),
        event("identify", "anon-spoofer", traits={"email": victim_email}),
        event("identify", "anon-spoofer", sign("someone-else"), traits={"email": victim_email}),
        event("track", "anon-spoofer", event="Order Completed", properties={"value": 900}),
    )

    assert [r["index"] for r in answer["identity_rejected"]] == [1, 2]
    after = person(stack, email=victim_email)
    assert after is not None and after["id"] == victim["id"]
    assert after["anonymous_ids"] == ["anon-victim"]
    assert timeline(stack, victim["id"]) == history
    assert alerts_for(stack, victim["id"]) == alerts_before
    # The spoofer's events are kept, as an anonymous person's.
    spoofer = person(stack, anonymous_id="anon-spoofer")
    assert spoofer is not None and spoofer["id"] != victim["id"]
    assert spoofer["identified"] is False and spoofer["verified"] is False
    assert [e[:2] for e in timeline(stack, spoofer["id"])] == [
        ("page", "Home"),
        ("identify", None),
        ("identify", None),
        ("track", "Order Completed"),
    ]
    assert alerts_for(stack, spoofer["id"]) == ["any order"]


def test_a_client_cannot_forge_the_verified_marker(stack: Stack) -> None:
    forged = {"bond": {"verified": "user_id"}}
    send(stack, WRITE_KEY, event("identify", "anon-f1", userId="user-f", context=forged))
    send(stack, SIGNED, event("identify", "anon-f2", userId="user-g", context=forged))

    open_person = person(stack, user_id="user-f")
    assert open_person is not None and open_person["verified"] is False
    assert person(stack, user_id="user-g") is None


def test_unsigned_identities_in_an_open_source_stitch_but_stay_unverified(stack: Stack) -> None:
    send(stack, WRITE_KEY, event("page", "anon-o", name="Home"))
    send(
        stack,
        WRITE_KEY,
        event("identify", "anon-o", userId="user-o", traits={"email": "olive@example.com"}),
    )

    found = person(stack, email="olive@example.com")

    assert found is not None and found["user_ids"] == ["user-o"]
    assert found["verified"] is False
    assert timeline(stack, found["id"]) == [
        ("page", "Home", "anon-o"),
        ("identify", None, "anon-o"),
    ]
    assert alerts_for(stack, found["id"]) == []


def test_rules_that_require_verification_fire_only_for_verified_persons(stack: Stack) -> None:
    order: dict[str, Any] = {"event": "Order Completed", "properties": {"value": 120}}
    send(stack, WRITE_KEY, event("identify", "anon-u", userId="user-u"))
    send(stack, WRITE_KEY, event("track", "anon-u", **order))
    send(stack, SIGNED, event("identify", "anon-v", sign("user-v"), userId="user-v"))
    send(stack, SIGNED, event("track", "anon-v", sign("user-v"), userId="user-v", **order))

    unverified = person(stack, user_id="user-u")
    verified = person(stack, user_id="user-v")

    assert unverified is not None and verified is not None
    assert alerts_for(stack, unverified["id"]) == ["any order"]
    assert alerts_for(stack, verified["id"]) == [
        "any order",
        "verified identified",
        "verified order",
    ]


def test_a_verified_person_stays_verified_when_another_browser_joins(stack: Stack) -> None:
    send(stack, SIGNED, event("identify", "anon-m1", sign("user-m"), userId="user-m"))
    send(stack, SIGNED, event("page", "anon-m2", name="Pricing"))
    joining = person(stack, anonymous_id="anon-m2")
    assert joining is not None

    send(stack, SIGNED, event("identify", "anon-m2", sign("user-m"), userId="user-m"))

    found = person(stack, user_id="user-m")
    assert found is not None and found["verified"] is True
    assert found["anonymous_ids"] == ["anon-m1", "anon-m2"]
    # The browser's former person id now answers as the person it joined.
    merged = stack.api.get(f"/persons/{joining['id']}").json()
    assert merged["id"] == found["id"] and merged["verified"] is True
