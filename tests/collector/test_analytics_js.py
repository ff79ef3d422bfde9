"""analytics.js (`@segment/analytics-next`) pointed at Bond, replayed request by request.

Each literal below is a request that analytics-next 1.84.3 made from Chromium 156 with its
Segment.io settings given inline (`apiHost` the collector's `host:port/v1`, `protocol` "http"),
captured on the wire; the HTTP client adds only Host, Connection and Content-Length. Before the
collector took these paths every call was answered 404 and dropped by the library, and before
its preflight allowed X-Retry-Count every retry was blocked by Chromium.
"""

from __future__ import annotations

import base64
import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest

from conftest import WRITE_KEY, Collector

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/156.0.0.0 Safari/537.36"
)
# What the browser sent with each call (the write key as Basic auth user name, no password).
HEADERS = {
    "sec-ch-ua-platform": '"Linux"',
    "Authorization": "Basic dGVzdC13cml0ZS1rZXk6",
    "User-Agent": USER_AGENT,
    "sec-ch-ua": '"Not:A-Brand";v="8", "Chromium";v="156"',
    "Content-Type": "text/plain",
    "sec-ch-ua-mobile": "?0",
    "Accept": "*/*",
    "Origin": "http://127.0.0.1:8766",
    "Sec-Fetch-Site": "same-site",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
    "Referer": "http://127.0.0.1:8766/",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "en-US,en;q=0.9",
}
# Every event's `context`, the same in each.
CONTEXT = (
    b'{"page":{"path":"/shop.html","referrer":"","search":"","title":"ajs test",'
    b'"url":"http://127.0.0.1:8766/shop.html"},'
    b'"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML,'
    b' like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",'
    b'"userAgentData":{"brands":[{"brand":"Not:A-Brand","version":"8"},{"brand":"Chromium",'
    b'"version":"156"}],"mobile":false,"platform":"Linux"},"locale":"en-US",'
    b'"library":{"name":"analytics.js","version":"next-1.84.3"},"timezone":"UTC"}'
)
# page('Docs', 'Install'), identify('ada-42', traits), track, group, alias('ada-43', 'ada-42')
# and screen('Home'), each posted to /v1/ and the first letter of its type. (The alias's userId
# is the library's: it overwrites `to` with the identified user's id.)
SINGLE = {
    "/v1/p": (
        b'{"timestamp":"2026-12-02T13:51:51.756Z","integrations":{},"type":"page",'
        b'"properties":{"path":"/shop.html","referrer":"","search":"","title":"ajs test",'
        b'"url":"http://127.0.0.1:8766/shop.html","category":"Docs","name":"Install"},'
        b'"category":"Docs","name":"Install","context":'
        + CONTEXT
        + b',"messageId":"ajs-next-1796219511756-8a2b075f-ab31-427e-b011-8368f0231043",'
        b'"anonymousId":"2b075fab-3122-4e70-9183-68f0231043d0","writeKey":"test-write-key",'
        b'"userId":null,"sentAt":"2026-12-02T13:51:51.840Z","_metadata":{"bundled":["Segment.io"],'
        b'"unbundled":[],"bundledIds":[]}}'
    ),
    "/v1/i": (
        b'{"timestamp":"2026-12-02T13:51:52.118Z","integrations":{},"type":"identify",'
        b'"userId":"ada-42","traits":{"email":"ada@example.com","plan":"pro"},"context":'
        + CONTEXT
        + b',"messageId":"ajs-next-1796219512118-5fab3122-7e70-4183-a8f0-231043d0b36c",'
        b'"anonymousId":"2b075fab-3122-4e70-9183-68f0231043d0","writeKey":"test-write-key",'
        b'"sentAt":"2026-12-02T13:51:52.132Z","_metadata":{"bundled":["Segment.io"],"unbundled":[],'
        b'"bundledIds":[]}}'
    ),
    "/v1/t": (
        b'{"timestamp":"2026-12-02T13:51:52.422Z","integrations":{},"event":"Order Completed",'
        b'"type":"track","properties":{"value":99.5,"currency":"EUR"},"context":'
        + CONTEXT
        + b',"messageId":"ajs-next-1796219512422-31227e70-1183-48f0-a310-43d0b36c5f2c",'
        b'"userId":"ada-42","anonymousId":"2b075fab-3122-4e70-9183-68f0231043d0",'
        b'"writeKey":"test-write-key","sentAt":"2026-12-02T13:51:52.440Z",'
        b'"_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}'
    ),
    "/v1/g": (
        b'{"timestamp":"2026-12-02T13:51:52.509Z","integrations":{},"type":"group",'
        b'"traits":{"name":"Acme"},"groupId":"acme","context":'
        + CONTEXT
        + b',"messageId":"ajs-next-1796219512509-7e701183-68f0-4310-83d0-b36c5f2c612d",'
        b'"userId":"ada-42","anonymousId":"2b075fab-3122-4e70-9183-68f0231043d0",'
        b'"writeKey":"test-write-key","sentAt":"2026-12-02T13:51:52.523Z",'
        b'"_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}'
    ),
    "/v1/a": (
        b'{"timestamp":"2026-12-02T13:51:52.547Z","integrations":{},"userId":"ada-42",'
        b'"type":"alias","previousId":"ada-42","context":'
        + CONTEXT
        + b',"messageId":"ajs-next-1796219512547-118368f0-2310-43d0-b36c-5f2c612d7fd1",'
        b'"anonymousId":"2b075fab-3122-4e70-9183-68f0231043d0","writeKey":"test-write-key",'
        b'"sentAt":"2026-12-02T13:51:52.563Z","_metadata":{"bundled":["Segment.io"],"unbundled":[],'
        b'"bundledIds":[]}}'
    ),
    "/v1/s": (
        b'{"timestamp":"2026-12-02T13:51:52.592Z","integrations":{},"type":"screen",'
        b'"properties":{},"name":"Home","context":'
        + CONTEXT
        + b',"messageId":"ajs-next-1796219512592-68f02310-43d0-436c-9f2c-612d7fd18485",'
        b'"userId":"ada-42","anonymousId":"2b075fab-3122-4e70-9183-68f0231043d0",'
        b'"writeKey":"test-write-key","sentAt":"2026-12-02T13:51:52.600Z",'
        b'"_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}'
    ),
}
# The same library with `deliveryStrategy: {strategy: "batching"}`: page and track in one
# request to /v1/b, without sentAt in the events.
BATCH = (
    b'{"writeKey":"test-write-key","batch":['
    + b",".join(
        [
            (
                b'{"timestamp":"2026-12-02T13:53:32.517Z","integrations":{},"type":"page",'
                b'"properties":{"path":"/shop.html","referrer":"","search":"","title":"ajs test",'
                b'"url":"http://127.0.0.1:8766/shop.html","category":"Docs","name":"Install"},'
                b'"category":"Docs","name":"Install","context":'
                + CONTEXT
                + b',"messageId":"ajs-next-1796219612517-3bb1d5c8-35af-4b20-b53a-9891a0bf4e05",'
                b'"anonymousId":"b1d5c835-af4b-40f5-ba98-91a0bf4e0558","writeKey":"test-write-key",'
                b'"userId":null,"_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}'
            ),
            (
                b'{"timestamp":"2026-12-02T13:53:32.669Z","integrations":{},'
                b'"event":"Order Completed",'
                b'"type":"track","properties":{"value":99.5,"currency":"EUR"},"context":'
                + CONTEXT
                + b',"messageId":"ajs-next-1796219612669-c835af4b-20f5-4a98-91a0-bf4e0558a69f",'
                b'"anonymousId":"b1d5c835-af4b-40f5-ba98-91a0bf4e0558","writeKey":"test-write-key",'
                b'"userId":null,"_metadata":{"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}'
            ),
        ]
    )
    + b'],"sentAt":"2026-12-02T13:53:33.171Z"}'
)
# A track sent again after a 503: the retry carries X-Retry-Count, which needs a preflight.
RETRY = (
    b'{"timestamp":"2026-12-02T13:52:12.779Z","integrations":{},"event":"Checkout Started",'
    b'"type":"track","properties":{"step":1},"context":'
    + CONTEXT
    + b',"messageId":"ajs-next-1796219532779-00f287f6-ade5-40e1-99d3-c71f96e080bd",'
    b'"anonymousId":"f287f6ad-e5e0-4119-93c7-1f96e080bd2b","writeKey":"test-write-key",'
    b'"userId":null,"sentAt":"2026-12-02T13:52:13.211Z","_metadata":{"retryCount":2,'
    b'"bundled":["Segment.io"],"unbundled":[],"bundledIds":[]}}'
)
RETRY_HEADERS = {
    "Content-Type": "text/plain",
    "Authorization": "Basic dGVzdC13cml0ZS1rZXk6",
    "X-Retry-Count": "1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("analytics-js") / "data").start()
    yield collector
    collector.stop()


def stored(server: Collector, body: bytes) -> list[tuple[str, str | None, str | None, str | None]]:
    """The rows of the events in `body` (one event, or a batch), in the order sent."""
    sent = orjson.loads(body)
    ids = [event["messageId"] for event in sent.get("batch", [sent])]
    with sqlite3.connect(server.data_dir / "events.db") as conn:
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT message_id, type, anonymous_id, user_id, event FROM events "
                f"WHERE message_id IN ({','.join('?' * len(ids))})",
                ids,
            )
        }
    return [rows[message_id] for message_id in ids if message_id in rows]


@pytest.mark.parametrize(
    ("path", "stored_as"),
    [
        ("/v1/p", ("page", None, "Install")),
        ("/v1/i", ("identify", "ada-42", None)),
        ("/v1/t", ("track", "ada-42", "Order Completed")),
        ("/v1/g", ("group", "ada-42", None)),
        ("/v1/a", ("alias", "ada-42", None)),
        ("/v1/s", ("screen", "ada-42", "Home")),
    ],
)
def test_each_call_to_its_one_letter_path_is_stored(
    server: Collector, path: str, stored_as: tuple[str, str | None, str | None]
) -> None:
    response = httpx.post(f"{server.url}{path}", content=SINGLE[path], headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    kind, user_id, name = stored_as
    assert stored(server, SINGLE[path]) == [
        (kind, "2b075fab-3122-4e70-9183-68f0231043d0", user_id, name)
    ]


def test_a_batch_to_v1_b_is_stored(server: Collector) -> None:
    response = httpx.post(f"{server.url}/v1/b", content=BATCH, headers=HEADERS)
    assert response.status_code == 200, response.text
    anonymous_id = "b1d5c835-af4b-40f5-ba98-91a0bf4e0558"
    assert stored(server, BATCH) == [
        ("page", anonymous_id, None, "Install"),
        ("track", anonymous_id, None, "Order Completed"),
    ]


def test_v1_import_the_older_mobile_libraries_batch_endpoint_takes_a_batch(
    server: Collector,
) -> None:
    # Not a captured request: analytics-android and the older analytics-ios post their batches
    # to /v1/import, with Basic auth.
    event = {
        "type": "track",
        "event": "App Opened",
        "anonymousId": "a-1",
        "messageId": str(uuid.uuid4()),
    }
    body = orjson.dumps({"batch": [event], "sentAt": "2026-12-02T13:53:33Z"})
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
    response = httpx.post(f"{server.url}/v1/import", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert stored(server, body) == [("track", "a-1", None, "App Opened")]
