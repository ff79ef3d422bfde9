"""A local stand-in for a Discord webhook, for tests, the latency benchmark and demos.

A real HTTP server on a free port that records every request and answers the way Discord does:
200 with a message JSON by default; or, from a script of answers, 429 with or without `Via`,
500, 404, or a hang until released. It keeps a rate-limit bucket like Discord's (a fixed number
of requests per window, advertised in `X-RateLimit-*` headers) and counts requests that broke it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Answer = Literal["ok", "429", "429-via", "500", "404", "401", "hang"]


@dataclass
class Request:
    at: float  # time.time() when the request arrived
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0  # 0 while hanging: the request never got an answer


@dataclass
class Bucket:
    limit: int
    window_s: float
    started: float = 0.0
    used: int = 0

    def take(self, now: float) -> tuple[bool, int, float]:
        """Spend one request; returns (allowed, remaining, seconds until the window resets)."""
        if now >= self.started + self.window_s:
            self.started, self.used = now, 0
        self.used += 1
        reset_after = self.started + self.window_s - now
        return self.used <= self.limit, max(self.limit - self.used, 0), reset_after


@dataclass
class FakeDiscord:
    bucket: Bucket | None = None
    requests: list[Request] = field(default_factory=list)
    over_limit: int = 0  # requests that arrived while the bucket was empty
    script: deque[Answer] = field(default_factory=deque)
    released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _next_id: int = 1

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/webhooks/1234/s3cret-token"

    def start(self, port: int = 0) -> FakeDiscord:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, body = fake._answer(self.path, dict(self.headers), raw)
                if status == 0:
                    return
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def then(self, *answers: Answer) -> FakeDiscord:
        """Answer the next requests this way, in order; after them, answer normally."""
        self.script.extend(answers)
        return self

    @property
    def delivered(self) -> list[Request]:
        """Requests answered 200: the messages a channel would show."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def _answer(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            body: dict[str, Any] = json.loads(raw or b"{}")
            request = Request(time.time(), path, headers, body)
            self.requests.append(request)
            answer = self.script.popleft() if self.script else "ok"
            limit_headers: dict[str, str] = {}
            if self.bucket is not None and answer == "ok":
                allowed, remaining, reset_after = self.bucket.take(time.monotonic())
                limit_headers = {
                    "X-RateLimit-Limit": str(self.bucket.limit),
                    "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                }
                if not allowed:
                    self.over_limit += 1
                    answer = "429-via"
            status = request.status = _STATUS[answer]
            if answer == "ok":
                message = {"id": str(self._next_id), "content": body.get("content", "")}
                self._next_id += 1
                return status, limit_headers, message
        if answer == "hang":
            self.released.wait()
            return 0, {}, {}
        if answer.startswith("429"):
            wait = float(limit_headers.get("X-RateLimit-Reset-After", "0.05"))
            via = {"Via": "1.1 google"} if answer == "429-via" else {}
            rate = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
            return status, {**limit_headers, **via, "Retry-After": str(wait)}, rate
        return status, {}, {"message": _MESSAGES.get(status, "error"), "code": 0}


_STATUS: dict[str, int] = {
    "ok": 200,
    "429": 429,
    "429-via": 429,
    "500": 500,
    "404": 404,
    "401": 401,
    "hang": 0,
}
_MESSAGES = {404: "Unknown Webhook", 401: "Invalid Webhook Token", 500: "Internal Server Error"}
