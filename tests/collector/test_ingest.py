"""The Segment endpoints over real HTTP against a running `bond serve`."""

from __future__ import annotations

import asyncio
import base64
import gzip
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bond.config import load
from bond.logs import Tally
from collector.app import create_app
from collector.ingest import PROBLEM_LINES
from conftest import WRITE_KEY, Collector, captured_logs, wait_until

TYPES = ["identify", "track", "page", "screen", "group", "alias"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("ingest") / "data").start()
    yield collector
    collector.stop()


def post(server: Collector, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "text/plain", **kwargs.pop("headers", {})}
    return httpx.post(f"{server.url}{path}", content=content, headers=headers, **kwargs)


def stored(server: Collector, message_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        return conn.execute(
            "SELECT type, anonymous_id, user_id, event, timestamp, received_at, ip, user_agent "
            "FROM events WHERE message_id = ?",
            (message_id,),
        ).fetchall()


def event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Clicked",
        "anonymousId": "anon-1",
        "messageId": mid(),
        **fields,
    }


def mid() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize("kind", TYPES)
def test_single_endpoint_accepts_each_type(server: Collector, kind: str) -> None:
    message = {
        "writeKey": WRITE_KEY,
        "messageId": mid(),
        "anonymousId": "anon-1",
        "userId": "user-1",
        "event": "Clicked",
        "previousId": "anon-0",
        "groupId": "g-1",
    }
    response = post(server, f"/v1/{kind}", message)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert stored(server, message["messageId"])[0][0] == kind


def test_batch_keeps_valid_events_and_rejects_bad_ones_with_reasons(server: Collector) -> None:
    good = [event(), event(type="page", name="Home")]
    bad = [
        event(anonymousId="undefined"),
        event(anonymousId="[object Object]", userId="null"),
        event(type="shout"),
        event(event=""),
        "not an object",
        event(properties=["not", "an", "object"]),
        event(timestamp="yesterday"),
    ]
    batch = [good[0], *bad, good[1]]
    response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == list(range(1, len(bad) + 1))
    reasons = [r["reason"] for r in body["rejected"]]
    assert "anonymousId or userId is required" in reasons[0]
    assert "anonymousId or userId is required" in reasons[1]
    assert "'shout' is not one of" in reasons[2]
    assert "'event' name" in reasons[3]
    assert "JSON object" in reasons[4]
    assert "properties must be a JSON object" in reasons[5]
    assert "ISO-8601" in reasons[6]
    assert all(stored(server, e["messageId"]) for e in good)
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        kept = conn.execute("SELECT reason, body FROM rejected").fetchall()
    assert any(b'"shout"' in b for _, b in kept), "rejected events are kept with their reason"


def test_an_event_is_stored_as_the_client_sent_it(server: Collector) -> None:
    message_id = mid()
    sent = (
        '{ "type" : "track", "event": "Caf\\u00e9 visit", "anonymousId": "a-1",'
        f' "messageId": "{message_id}", "properties": {{ "n": 1e3, "s": "\\/" }} }}'
    ).encode()
    body = b'{"writeKey": "%s", "batch": [ %s ]}' % (WRITE_KEY.encode(), sent)
    assert post(server, "/v1/batch", body).json()["accepted"] == 1
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        row = conn.execute(
            "SELECT event, body FROM events WHERE message_id = ?", (message_id,)
        ).fetchone()
    assert row == ("Caf\u00e9 visit", sent)


def test_fields_of_the_wrong_shape_are_rejected_with_reasons(server: Collector) -> None:
    batch = [
        event(context="not an object"),
        event(type=["track"]),
        event(messageId={"id": 1}),
        event(integrations=3),
        event(),
    ]
    response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": batch})
    assert response.status_code == 200
    reasons = [r["reason"] for r in response.json()["rejected"]]
    assert reasons[0] == "context must be a JSON object"
    assert "is not one of" in reasons[1]
    assert "messageId must be a string" in reasons[2]
    assert reasons[3] == "integrations must be a JSON object"
    assert response.json()["accepted"] == 1


def test_a_request_whose_every_event_is_invalid_is_a_400(server: Collector) -> None:
    response = post(server, "/v1/track", {"writeKey": WRITE_KEY, "anonymousId": "0", "event": "X"})
    assert response.status_code == 400
    assert response.json()["rejected"][0]["index"] == 0


def test_duplicate_message_id_is_acknowledged_and_stored_once(server: Collector) -> None:
    message = event()
    for _ in range(3):
        response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [message, message]})
        assert response.status_code == 200
    assert len(stored(server, message["messageId"])) == 1


def test_missing_message_id_is_generated(server: Collector) -> None:
    message = event(anonymousId=f"anon-{mid()}")
    del message["messageId"]
    assert post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [message]}).status_code == 200
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        (message_id,) = conn.execute(
            "SELECT message_id FROM events WHERE anonymous_id = ?", (message["anonymousId"],)
        ).fetchone()
    assert uuid.UUID(message_id)


def test_clock_skew_is_corrected_from_sent_at(server: Collector) -> None:
    # The client clock runs a day behind; the event happened 5 s before it was sent.
    message = event(timestamp="2020-01-01T00:00:00Z")
    body = {"writeKey": WRITE_KEY, "sentAt": "2020-01-01T00:00:05Z", "batch": [message]}
    assert post(server, "/v1/batch", body).status_code == 200
    (_, _, _, _, timestamp, received_at, _, _) = stored(server, message["messageId"])[0]
    assert received_at - timestamp == 5000


def test_a_clock_that_is_about_right_is_trusted_as_it_is(server: Collector) -> None:
    # Transit time is not skew: correcting for it would reorder a browser's own events.
    now = datetime.now(UTC)
    sent = (now - timedelta(milliseconds=800)).isoformat()
    first = event(timestamp=(now - timedelta(milliseconds=900)).isoformat())
    body = {"writeKey": WRITE_KEY, "sentAt": sent, "batch": [first]}
    assert post(server, "/v1/batch", body).status_code == 200
    timestamp = stored(server, first["messageId"])[0][4]
    assert timestamp == int((now - timedelta(milliseconds=900)).timestamp() * 1000)


def test_future_timestamp_is_clamped_with_a_warning(server: Collector) -> None:
    message = event(timestamp="2999-01-01T00:00:00Z")
    response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [message]})
    assert response.status_code == 200
    assert "future" in response.json()["warnings"][0]
    (_, _, _, _, timestamp, received_at, _, _) = stored(server, message["messageId"])[0]
    assert timestamp == received_at


def test_bad_sent_at_skips_skew_correction_but_keeps_the_events(server: Collector) -> None:
    message = event(timestamp="2024-05-01T10:00:00Z")
    response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "sentAt": 12, "batch": [message]})
    assert response.status_code == 200
    assert "clock-skew correction skipped" in response.json()["warnings"][0]
    assert stored(server, message["messageId"])[0][4] == 1714557600000


def test_an_events_own_bad_sent_at_skips_skew_correction_but_keeps_it(server: Collector) -> None:
    message = event(timestamp="2024-05-01T10:00:00Z", sentAt="not-a-time")
    response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [message, event()]})
    assert response.status_code == 200 and response.json()["accepted"] == 2
    assert "1 event(s) had a sentAt" in response.json()["warnings"][0]
    assert stored(server, message["messageId"])[0][4] == 1714557600000


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp": "2024-05-01T10:00:00Z", "originalTimestamp": None},
        {"timestamp": "2024-05-01t10:00:00z"},  # RFC 3339 allows lower case
    ],
)
def test_timestamps_as_some_clients_write_them(server: Collector, fields: dict[str, Any]) -> None:
    message = event(**fields)
    assert post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [message]}).status_code == 200
    assert stored(server, message["messageId"])[0][4] == 1714557600000


def test_an_event_that_must_be_edited_but_cannot_be_read_is_rejected_beside_good_ones(
    server: Collector,
) -> None:
    # Events are stored as sent without being decoded whole (the worker applies one it cannot
    # read without its properties); one the collector must re-encode is refused instead.
    nested = b'{"a":' * 300 + b"1" + b"}" * 300  # past what orjson writes: put together by hand
    good = [event(), event()]
    bad = [
        # context.bond is the collector's: the event is decoded, vetted and re-encoded
        b'{"type":"track","event":"Huge","anonymousId":"a","context":{"bond":{}},'
        b'"properties":{"x":-1e400}}',
        b'{"type":"track","event":"Deep","anonymousId":"a","context":{"bond":{}},'
        b'"properties":%s}' % nested,
    ]
    body = b'{"writeKey":"%s","batch":[%s]}' % (
        WRITE_KEY.encode(),
        b",".join([orjson.dumps(good[0]), *bad, orjson.dumps(good[1])]),
    )
    response = post(server, "/v1/batch", body)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in response.json()["rejected"]}
    assert "cannot be stored: number is infinity" in reasons[1]
    assert "more than 64 levels deep" in reasons[2]
    assert all(stored(server, e["messageId"]) for e in good)
    shared = b'{"writeKey":"%s","context":{"locale":"fr"},"batch":[%s]}' % (
        WRITE_KEY.encode(),
        b'{"type":"track","event":"Huge","anonymousId":"a","properties":{"x":1e999}}',
    )
    response = post(server, "/v1/batch", shared)
    assert response.status_code == 400
    assert "number is infinity" in response.json()["rejected"][0]["reason"]


def test_a_body_too_deep_to_read_is_a_400_not_a_500(server: Collector) -> None:
    nested = b"[" * 5000 + b"]" * 5000
    single = b'{"writeKey":"%s","anonymousId":"a","event":"x","properties":{"a":%s}}' % (
        WRITE_KEY.encode(),
        nested,
    )
    many = b'{"writeKey":"%s","batch":[%s,%s]}' % (
        WRITE_KEY.encode(),
        orjson.dumps(event()),
        single,
    )
    for path, body in (("/v1/track", single), ("/v1/batch", many)):
        response = post(server, path, body)
        assert response.status_code == 400, response.text
        assert "levels" in response.text


def test_a_batchs_context_and_integrations_apply_to_each_event(server: Collector) -> None:
    shared = {"ip": "198.51.100.7", "userAgent": "BatchAgent/2", "timezone": "Europe/Paris"}
    own = event(context={"timezone": "Asia/Tokyo"}, integrations={"All": True})
    bare = event()
    body = {
        "writeKey": WRITE_KEY,
        "context": shared,
        "integrations": {"All": False},
        "batch": [own, bare],
    }
    assert post(server, "/v1/batch", body).json()["accepted"] == 2
    assert stored(server, bare["messageId"])[0][6:] == ("198.51.100.0", "BatchAgent/2")
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        kept = {
            message_id: orjson.loads(body)
            for message_id, body in conn.execute(
                "SELECT message_id, body FROM events WHERE message_id IN (?, ?)",
                (own["messageId"], bare["messageId"]),
            )
        }
    assert kept[own["messageId"]]["context"] == {**shared, "timezone": "Asia/Tokyo"}
    assert kept[own["messageId"]]["integrations"] == {"All": True}
    assert kept[bare["messageId"]]["context"] == shared
    assert kept[bare["messageId"]]["integrations"] == {"All": False}
    refused = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "context": 5, "batch": [event()]})
    assert refused.status_code == 400
    assert "the batch's context must be a JSON object" in refused.json()["reason"]


def test_a_bug_is_answered_as_json_and_logged_without_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("ada@example.com")

    monkeypatch.setattr("collector.ingest.to_event", broken)
    (tmp_path / "none.toml").write_text("")
    env = {"BOND_DATA_DIR": str(tmp_path / "data"), "BOND_WRITE_KEY": WRITE_KEY}
    config = load(tmp_path / "none.toml", env=env)
    message = event(type="identify", traits={"email": "ada@example.com"}, writeKey=WRITE_KEY)

    async def send() -> tuple[httpx.Response, str]:
        # It fails before any commit, so the app needs no running writer (no lifespan).
        transport = httpx.ASGITransport(app=create_app(config))
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            response = await client.post("/v1/identify", content=orjson.dumps(message))
            return response, (await client.get("/metrics")).text

    with captured_logs() as logs:
        response, metrics = asyncio.run(send())
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "reason": "the collector failed on this request",
    }
    [line] = logs.records("ingest")
    assert (line["status"], line["exception"]) == (500, "ZeroDivisionError")
    assert line["at"].startswith("test_ingest.py:")
    assert "ada@example.com" not in logs.text
    assert 'bond_requests_total{route="single",status="500"} 1' in metrics


def test_a_client_repeating_a_bad_request_gets_a_few_lines_a_second_and_a_count(
    tmp_path: Path,
) -> None:
    (tmp_path / "none.toml").write_text("")
    env = {"BOND_DATA_DIR": str(tmp_path / "data"), "BOND_WRITE_KEY": WRITE_KEY}
    app = create_app(load(tmp_path / "none.toml", env=env))
    # A window that ends when the test says, so that every request falls in one.
    app.ingest.tally = Tally("ingest_summary", interval_s=3600)

    async def send() -> None:
        # Refused before any commit, so the app needs no running writer (no lifespan).
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            for _ in range(PROBLEM_LINES + 7):
                body = {**event(), "writeKey": "wrong-key-value"}
                response = await client.post("/v1/track", content=orjson.dumps(body))
                assert response.status_code == 401
        app.ingest.tally.flush()

    with captured_logs() as logs:
        asyncio.run(send())
    assert len(logs.records("ingest")) == PROBLEM_LINES
    [summary] = logs.records("ingest_summary")
    assert summary["counts"] == {"single 401 unauthorized": 7}


def test_ip_is_truncated_and_user_agent_kept(server: Collector) -> None:
    message = event(context={"ip": "203.0.113.77"})
    headers = {"User-Agent": "TestAgent/1.0", "Origin": "https://shop.example"}
    assert post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [message]}, headers=headers)
    row = stored(server, message["messageId"])[0]
    assert row[6] == "203.0.113.0"
    assert row[7] == "TestAgent/1.0"


class TestAuth:
    def test_basic_auth_write_key(self, server: Collector) -> None:
        token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        response = post(server, "/v1/track", event(), headers={"Authorization": f"Basic {token}"})
        assert response.status_code == 200

    def test_unknown_key_is_401_with_reason(self, server: Collector) -> None:
        response = post(server, "/v1/track", {**event(), "writeKey": "nope"})
        assert response.status_code == 401
        assert "unknown write key" in response.json()["reason"]

    def test_missing_key_is_401_with_reason(self, server: Collector) -> None:
        response = post(server, "/v1/track", event())
        assert response.status_code == 401
        assert "Basic auth" in response.json()["reason"]

    def test_malformed_basic_auth_is_401(self, server: Collector) -> None:
        response = post(server, "/v1/track", event(), headers={"Authorization": "Basic %%%"})
        assert response.status_code == 401


class TestBodies:
    def test_application_json_is_accepted(self, server: Collector) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        body = {"writeKey": WRITE_KEY, "batch": [event()]}
        assert post(server, "/v1/batch", body, headers=headers).status_code == 200

    def test_gzip_body(self, server: Collector) -> None:
        message = event()
        raw = gzip.compress(orjson.dumps({"writeKey": WRITE_KEY, "batch": [message]}))
        response = post(server, "/v1/batch", raw, headers={"Content-Encoding": "gzip"})
        assert response.status_code == 200
        assert stored(server, message["messageId"])

    def test_gzip_bomb_is_413_not_a_memory_blow_up(self, server: Collector) -> None:
        bomb = gzip.compress(b"[" + b" " * (200 * 1024 * 1024) + b"]", compresslevel=9)
        assert len(bomb) < 500 * 1024
        response = post(server, "/v1/batch", bomb, headers={"Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert "inflates past" in response.json()["reason"]

    def test_gzip_members_end_to_end_make_one_body(self, server: Collector) -> None:
        # Enough events that the second member spans several reads of the inflater.
        messages = [event() for _ in range(600)]
        raw = orjson.dumps({"writeKey": WRITE_KEY, "batch": messages})
        half = len(raw) // 2
        body = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
        response = post(server, "/v1/batch", body, headers={"Content-Encoding": "gzip"})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(messages)
        assert stored(server, messages[-1]["messageId"])

    def test_gzip_members_share_one_decompression_budget(self, server: Collector) -> None:
        # Each member stays under the 1 MiB budget; together they pass it.
        member = gzip.compress(b" " * (600 * 1024), compresslevel=9)
        headers = {"Content-Encoding": "gzip"}
        response = post(server, "/v1/batch", member + member, headers=headers)
        assert response.status_code == 413
        assert "inflates past" in response.json()["reason"]

    def test_bytes_after_the_gzip_data_are_400(self, server: Collector) -> None:
        raw = gzip.compress(orjson.dumps({"writeKey": WRITE_KEY, "batch": [event()]}))
        headers = {"Content-Encoding": "gzip"}
        response = post(server, "/v1/batch", raw + b"JUNKJUNK", headers=headers)
        assert response.status_code == 400
        assert "8 bytes after its gzip data" in response.json()["reason"]

    def test_corrupt_gzip_is_400(self, server: Collector) -> None:
        response = post(server, "/v1/batch", b"not gzip", headers={"Content-Encoding": "gzip"})
        assert response.status_code == 400

    def test_unsupported_encoding_and_type(self, server: Collector) -> None:
        body = {"writeKey": WRITE_KEY, "batch": [event()]}
        assert (
            post(server, "/v1/batch", body, headers={"Content-Encoding": "br"}).status_code == 415
        )
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert post(server, "/v1/batch", body, headers=form).status_code == 415

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [(b"{not json", "not valid JSON"), (b"[]", "JSON object"), (b"", "empty")],
    )
    def test_malformed_bodies_are_400_with_reason(
        self, server: Collector, raw: bytes, reason: str
    ) -> None:
        response = post(server, "/v1/batch", raw)
        assert response.status_code == 400
        assert reason in response.json()["reason"]

    def test_batch_without_array_is_400(self, server: Collector) -> None:
        response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": {}})
        assert response.status_code == 400

    def test_unknown_endpoint_is_404(self, server: Collector) -> None:
        assert post(server, "/v1/shout", {"writeKey": WRITE_KEY}).status_code == 404


class TestLimits:
    """Each limit on both sides of its boundary, with the defaults (32 KB, 500 KB, 2,500)."""

    @staticmethod
    def padded(size: int) -> dict[str, Any]:
        message = event(properties={"pad": ""})
        overhead = len(orjson.dumps(message))
        message["properties"]["pad"] = "x" * (size - overhead)
        assert len(orjson.dumps(message)) == size
        return message

    def test_event_size_boundary(self, server: Collector) -> None:
        at_limit, over = self.padded(32 * 1024), self.padded(32 * 1024 + 1)
        body = {"writeKey": WRITE_KEY, "batch": [at_limit, over]}
        response = post(server, "/v1/batch", body)
        assert response.json()["accepted"] == 1
        assert response.json()["rejected"][0]["index"] == 1
        assert "limit is 32768" in response.json()["rejected"][0]["reason"]

    def test_body_size_boundary(self, server: Collector) -> None:
        def body_of(size: int) -> bytes:
            raw = orjson.dumps({"writeKey": WRITE_KEY, "batch": [event()], "pad": ""})
            return raw[:-2] + b"x" * (size - len(raw)) + b'"}'

        assert post(server, "/v1/batch", body_of(500 * 1024)).status_code == 200
        response = post(server, "/v1/batch", body_of(500 * 1024 + 1))
        assert response.status_code == 413
        assert "512000" in response.json()["reason"]

    def test_batch_count_boundary(self, server: Collector) -> None:
        small = {"type": "page", "anonymousId": "a"}
        assert (
            post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [small] * 2500}).status_code
            == 200
        )
        response = post(server, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [small] * 2501})
        assert response.status_code == 413
        assert "limit is 2500" in response.json()["reason"]


class TestCors:
    def test_preflight_echoes_allowed_origin(self, server: Collector) -> None:
        response = httpx.options(
            f"{server.url}/v1/batch",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
        )
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "POST" in response.headers["access-control-allow-methods"]

    def test_actual_request_echoes_origin_with_credentials(self, server: Collector) -> None:
        body = {"writeKey": WRITE_KEY, "batch": [event()]}
        response = post(server, "/v1/batch", body, headers={"Origin": "https://shop.example"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["access-control-expose-headers"] == "Retry-After"


def test_origin_allowlist_per_source(tmp_path: Path) -> None:
    config = tmp_path / "bond.toml"
    config.write_text(
        '[[sources]]\nname = "shop"\nwrite_key = "shop-key"\norigins = ["https://shop.example"]\n'
        '[[sources]]\nname = "blog"\nwrite_key = "blog-key"\norigins = ["https://blog.example"]\n'
    )
    server = Collector(tmp_path / "data", env={"BOND_CONFIG": str(config), "BOND_WRITE_KEY": None})
    server.start()
    try:
        shop = {"Origin": "https://shop.example"}
        ok = post(server, "/v1/batch", {"writeKey": "shop-key", "batch": [event()]}, headers=shop)
        assert ok.status_code == 200
        refused = post(
            server, "/v1/batch", {"writeKey": "blog-key", "batch": [event()]}, headers=shop
        )
        assert refused.status_code == 403
        assert "may not send to source 'blog'" in refused.json()["reason"]
        preflight = httpx.options(
            f"{server.url}/v1/batch", headers={"Origin": "https://evil.example"}
        )
        assert preflight.status_code == 403
        assert "access-control-allow-origin" not in preflight.headers
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'bond_requests_total{route="preflight",status="403"} 1' in metrics
    finally:
        server.stop()


def log_lines(server: Collector, event_name: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in server.log.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event_name]


def test_clean_requests_are_counted_each_second_and_problems_get_a_line_each(
    collector: Collector,
) -> None:
    for _ in range(3):
        message = event(traits={"email": "secret.person@example.com"}, type="identify")
        assert post(collector, "/v1/identify", {**message, "writeKey": WRITE_KEY}).is_success
    assert post(collector, "/v1/batch", {"writeKey": WRITE_KEY, "batch": [event()] * 2}).is_success
    post(collector, "/v1/track", {**event(), "writeKey": "wrong-key-value"})
    one_bad = [event(), event(anonymousId="undefined")]
    post(collector, "/v1/batch", {"writeKey": WRITE_KEY, "batch": one_bad})

    def counted() -> dict[str, int]:
        totals: dict[str, int] = {}
        for line in log_lines(collector, "ingest_summary"):
            for key, count in line["counts"].items():
                totals[key] = totals.get(key, 0) + count
        return totals

    wait_until(lambda: counted().get("default single 200") == 3, what="the summary line")
    assert counted() == {"default single 200": 3, "default batch 200": 1, "default events": 5}
    problems = log_lines(collector, "ingest")
    assert [(line["status"], line.get("reason")) for line in problems] == [
        (401, "unauthorized"),
        (200, None),
    ]
    assert problems[1]["accepted"] == 1
    assert problems[1]["reasons"] == {"missing_id": 1}
    assert "secret.person@example.com" not in collector.log
    assert WRITE_KEY not in collector.log
    assert "wrong-key-value" not in collector.log
