"""A small HTTP/1.1 keep-alive load generator for loopback benchmarks.

It keeps N connections busy, one request in flight on each, and records every latency. Written
on asyncio protocols rather than an HTTP client library so that the generator, not the server,
is the cheap side of the measurement.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

BodyMaker = Callable[[int], bytes]


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        status = self._complete_response()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))
        if not self.lost.done():
            self.lost.set_result(None)

    def _complete_response(self) -> int | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).lower()
        total = end + 4 + _content_length(head)
        if len(self.buffer) < total:
            return None
        status = int(head[9:12])
        del self.buffer[:total]
        return status

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line[15:])
    return 0


def _request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _drive(
    host: str, port: int, path: str, make_body: BodyMaker, connections: int, seconds: float
) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult()
    counter = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal counter
        _, conn = await loop.create_connection(_Connection, host, port)
        try:
            while time.perf_counter() < deadline:
                counter += 1
                raw = _request(host, port, path, make_body(counter))
                started = time.perf_counter()
                try:
                    status = await conn.request(raw)
                except ConnectionError:
                    result.errors += 1
                    return
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.requests += 1
        finally:
            assert conn.transport is not None
            conn.transport.close()

    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - start
    return result


def run_load(
    url: str, path: str, make_body: BodyMaker, *, connections: int, seconds: float
) -> LoadResult:
    host, _, port = url.removeprefix("http://").partition(":")
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_drive(host, int(port), path, make_body, connections, seconds))
