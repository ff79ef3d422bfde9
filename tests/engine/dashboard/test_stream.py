"""The live feed: server-sent events in the right format, events held briefly for their person,
stitches and health, and a reconnect that carries on from Last-Event-ID over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import ADMIN_TOKEN, WRITE_KEY, BondProcess, Collector, ReadApi
from engine.dashboard.health import Health
from engine.dashboard.live import MAX_BATCH, LogTail
from engine.dashboard.stream import CATCH_UP, HOLD_S, Feed, Position, message, start_position
from tests.engine.dashboard.dashboard_support import HookedEngine, Loop

Message = dict[str, str]


def parse(chunk: bytes) -> list[Message]:
    """Server-sent events as a browser's EventSource reads them."""
    out = []
    for block in chunk.decode().split("\n\n"):
        fields: Message = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            out.append(fields)
    return out


def test_a_message_is_an_id_an_event_name_and_one_line_of_json() -> None:
    chunk = message("events", [{"name": "two\nlines\r\n", "x": "<b>"}], "12.3")
    assert chunk.endswith(b"\n\n")
    assert chunk.count(b"\n") == 4
    (parsed,) = parse(chunk)
    assert parsed["id"] == "12.3"
    assert parsed["event"] == "events"
    assert orjson.loads(parsed["data"]) == [{"name": "two\nlines\r\n", "x": "<b>"}]


def test_a_position_round_trips_and_garbage_is_no_position() -> None:
    assert Position.decode(Position(42, 7).encode()) == Position(42, 7)
    for garbage in (None, "", "1", "a.b", "-1.2", "1.2.3", "\u0661.\u0662"):
        assert Position.decode(garbage) is None, garbage


class Ticking:
    """A clock that moves a quarter of a second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


@pytest.fixture
def engine(data_dir: Path) -> Iterator[HookedEngine]:
    running = HookedEngine(data_dir)
    yield running
    running.close()


def test_the_feed_sends_events_with_their_person_stitches_and_health(
    engine: HookedEngine,
) -> None:
    clock = Ticking()
    tail = LogTail(engine.config.events_db)
    health = Health(tail, lambda: engine.reader, "http://127.0.0.1:9/metrics", clock=clock)
    feed = Feed(tail, lambda: engine.reader, health, clock=clock, poll_s=0)
    stream: AsyncGenerator[bytes, None] = feed.stream(start_position(tail, engine.reader))
    loop = Loop()

    def until(kind: str) -> list[Message]:
        """Read the stream until a message of `kind` arrives; return what came with it."""
        seen: list[Message] = []
        while not any(m.get("event") == kind for m in seen):
            seen += parse(loop.run(anext(stream)))
        return seen

    assert loop.run(anext(stream)) == b"retry: 2000\n\n"
    (health_message,) = until("health")
    assert orjson.loads(health_message["data"])["lag"] == 0

    engine.page("laptop", 1_000, "/")
    engine.identify("laptop", 2_000, email="ada@example.com")
    engine.run()
    arrived = until("stitches")
    events = next(m for m in arrived if m["event"] == "events")
    shown = orjson.loads(events["data"])
    assert [(e["seq"], e["person"]["name"]) for e in shown] == [
        (1, "ada@example.com"),
        (2, "ada@example.com"),
    ]
    stitches = next(m for m in arrived if m["event"] == "stitches")
    assert [s["kind"] for s in orjson.loads(stitches["data"])] == ["identified"]
    assert stitches["id"] == "2.1"

    # Not applied yet: held for the worker, then shown without a person.
    engine.page("phone", 3_000, "/")
    held_from = clock.now
    late = until("events")
    assert clock.now - held_from >= HOLD_S
    (unapplied,) = orjson.loads(next(m for m in late if m["event"] == "events")["data"])
    assert (unapplied["seq"], unapplied["person"]) == (3, None)
    loop.run(stream.aclose())
    loop.close()


@pytest.fixture
def stack(data_dir: Path) -> Iterator[tuple[Collector, ReadApi]]:
    collector = Collector(data_dir).start()
    worker = BondProcess(["worker"], data_dir).start()
    api = ReadApi(data_dir).start()
    yield collector, api
    api.stop()
    worker.stop()
    collector.stop()


def logged_in(api: ReadApi) -> httpx.Client:
    base = api.url.removesuffix("/api")
    client = httpx.Client(base_url=base, timeout=10)
    form = client.get("/dashboard/login").text
    token = form.split('name="form" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/dashboard/login", data={"form": token, "token": ADMIN_TOKEN}, headers={"Origin": base}
    )
    assert response.status_code == 303, response.text
    return client


def read_until(response: httpx.Response, wanted: str, timeout: float = 20) -> list[Message]:
    """Messages from a live stream up to the first `events` message mentioning `wanted`."""
    deadline = time.monotonic() + timeout
    seen: list[Message] = []
    block: list[str] = []
    for line in response.iter_lines():
        if line:
            block.append(line)
            continue
        seen += parse("\n".join(block).encode())
        block = []
        last = seen[-1] if seen else {}
        if last.get("event") == "events" and wanted in last["data"]:
            return seen
        assert time.monotonic() < deadline, f"no event with {wanted!r} in {seen}"
    raise AssertionError("the stream ended")


def test_over_real_http_the_stream_resumes_from_last_event_id(
    stack: tuple[Collector, ReadApi],
) -> None:
    collector, api = stack
    client = logged_in(api)

    def send(anonymous_id: str) -> None:
        batch = [{"type": "page", "anonymousId": anonymous_id, "properties": {"path": "/"}}]
        body = {"writeKey": WRITE_KEY, "batch": batch}
        assert httpx.post(f"{collector.url}/v1/batch", json=body, timeout=5).status_code == 200

    with client.stream("GET", "/dashboard/api/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        send("first-visitor")
        first = read_until(response, "first-visitor")[-1]
    send("second-visitor")

    resume = {"Last-Event-ID": first["id"]}
    with client.stream("GET", "/dashboard/api/stream", headers=resume) as response:
        resumed = read_until(response, "second-visitor")
    shown = [
        e["anonymous_id"]
        for m in resumed
        if m.get("event") == "events"
        for e in orjson.loads(m["data"])
    ]
    assert shown == ["second-visitor"]  # nothing lost in between, nothing sent twice
    client.close()


def test_a_stream_resumed_from_long_ago_catches_up_on_the_newest_only(
    engine: HookedEngine,
) -> None:
    for ts in range(CATCH_UP + 30):
        engine.page("laptop", ts, "/")
    engine.run()
    tail = LogTail(engine.config.events_db)
    clock = Ticking()
    health = Health(tail, lambda: engine.reader, "http://127.0.0.1:9/metrics", clock=clock)
    feed = Feed(tail, lambda: engine.reader, health, clock=clock, poll_s=0)
    stream: AsyncGenerator[bytes, None] = feed.stream(Position(0, 0))
    loop = Loop()
    loop.run(anext(stream))
    sent: list[int] = []
    while len(sent) < CATCH_UP:
        for m in parse(loop.run(anext(stream))):
            if m["event"] == "events":
                sent += [e["seq"] for e in orjson.loads(m["data"])]
    assert sent == list(range(31, CATCH_UP + 31))
    loop.run(stream.aclose())
    loop.close()


def test_a_stream_given_more_than_it_sends_a_poll_stays_near_the_newest(
    engine: HookedEngine,
) -> None:
    tail = LogTail(engine.config.events_db)
    clock = Ticking()
    health = Health(tail, lambda: engine.reader, "http://127.0.0.1:9/metrics", clock=clock)
    feed = Feed(tail, lambda: engine.reader, health, clock=clock, poll_s=0)
    stream: AsyncGenerator[bytes, None] = feed.stream(start_position(tail, engine.reader))
    loop = Loop()
    loop.run(anext(stream))
    behind = []
    for poll in range(5):
        # Twice what a poll sends arrives between two polls (2,000 events a second).
        for n in range(2 * MAX_BATCH):
            engine.page(f"browser-{n % 40}", poll * 10_000 + n, "/")
        engine.run()
        sent = [
            e["seq"]
            for m in parse(loop.run(anext(stream)))
            if m["event"] == "events"
            for e in orjson.loads(m["data"])
        ]
        assert sent == list(range(sent[0], sent[0] + MAX_BATCH))  # in order, none twice
        behind.append(tail.head() - sent[-1])
    # Before, one more poll's surplus each time: 200, 400, ... 1,000 events behind.
    assert max(behind) <= CATCH_UP
    loop.run(stream.aclose())
    loop.close()
