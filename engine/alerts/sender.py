"""Delivering the outbox to a Discord webhook, one alert at a time, within Discord's rate limits.

`discord-webhook` builds and posts each request. Its own 429 handling is off: it sleeps inside
the call and only for a 429 that carries a `Via` header (raising on any other), while we want one
place that waits for every 429 and also obeys the rate-limit headers of successful answers, so the
bucket is never overrun in the first place.

Outcomes, per alert:
- 2xx: sent.
- 429 (with or without `Via`): the alert stays pending; nothing is sent until `retry_after` passes.
- 5xx, a network error or a timeout: retried later with exponential backoff; other due alerts go
  first, so one stubborn alert does not hold up the rest.
- 401, 403, 404: the webhook was deleted or the URL is wrong; the alert fails with a log line
  saying so. Any other 4xx means Discord refused this message; it fails with Discord's reason.

Delivery is at least once: an alert is marked sent only after Discord accepted it, so a crash in
the milliseconds between the two would send it again on restart, and never lose it.

The webhook URL carries its token, so it never reaches a log line or an error message: network
errors are reported by their type, since `requests` puts the URL in the text.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import orjson
import requests
from discord_webhook import DiscordWebhook

from bond.config import Config
from bond.errors import StorageError
from bond.logs import log
from bond.storage.sqlite import connect, data_version, wait_for_commit, write_transaction
from engine.alerts import outbox
from engine.alerts.outbox import Alert

MAX_ATTEMPTS = 12
BACKOFF_MAX_S = 300.0
# Without a rate-limit header or retry_after to go by, wait this long after a 429.
DEFAULT_RETRY_AFTER_S = 1.0
# How often an idle sender looks for new outbox rows: a cheap PRAGMA, so a short interval keeps
# alert latency low without real load.
POLL_S = 0.005
IDLE_MAX_S = 1.0
GONE = (401, 403, 404)


class Reply(NamedTuple):
    """What came back from one webhook request."""

    status: int | None  # None: no answer at all (network error or timeout)
    reason: str
    retry_after_s: float | None = None  # a 429's wait
    bucket_reset_s: float | None = None  # the bucket is empty and refills after this long
    message_id: str | None = None


def post(url: str, payload: dict[str, Any], *, timeout_s: float) -> Reply:
    """One webhook request through `discord-webhook`, its answer classified (never raises)."""
    webhook = DiscordWebhook(url, timeout=timeout_s, rate_limit_retry=False, **payload)
    try:
        response = webhook.api_post_request()
    except requests.RequestException as exc:
        return Reply(None, f"no answer from Discord ({type(exc).__name__})")
    body = _json(response.content)
    reset = _bucket_reset(response.headers)
    if 200 <= response.status_code < 300:
        message_id = body.get("id")
        return Reply(response.status_code, "sent", None, reset, _str_or_none(message_id))
    if response.status_code == 429:
        retry_after = _float(body.get("retry_after")) or _float(response.headers.get("Retry-After"))
        via = "with Via" if response.headers.get("Via") else "without Via"
        return Reply(429, f"rate limited ({via})", retry_after, reset)
    message = body.get("message")
    detail = f": {str(message)[:200]}" if message else ""
    return Reply(
        response.status_code, f"Discord answered {response.status_code}{detail}", None, reset
    )


class Sender:
    """Delivers pending alerts from `state.db` until stopped. One sender per data directory."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        webhook_url: str,
        *,
        timeout_s: float = 10.0,
        backoff_base_s: float = 1.0,
    ) -> None:
        self._conn = conn
        self._url = webhook_url
        self._timeout_s = timeout_s
        self._backoff_base_s = backoff_base_s
        self._bucket_free_at = 0.0  # time.monotonic() before which nothing may be sent
        self.rate_limited = 0  # 429s received: each one is a request Discord counted against us

    def run(self, stop: threading.Event) -> None:
        outbox.migrate_outbox(self._conn)
        log("alert_sender_started")
        while not stop.is_set():
            try:
                # Read before looking for work, so an alert enqueued meanwhile ends the wait.
                version = data_version(self._conn)
                if self.send_due(stop) == 0:
                    self._wait_for_work(stop, version)
            except StorageError as exc:
                # The worker holds state.db's write lock for a batch; an alert marked late is
                # better than a sender thread that died and sends nothing until a restart.
                log("alert_sender_error", reason=str(exc))
                stop.wait(IDLE_MAX_S)
        log("alert_sender_stopped", rate_limited=self.rate_limited)

    def send_due(self, stop: threading.Event | None = None) -> int:
        """Deliver every alert due now (waiting out rate limits); returns how many were tried."""
        stop = stop or threading.Event()
        tried = 0
        while not stop.is_set():
            if stop.wait(max(self._bucket_free_at - time.monotonic(), 0)):
                break
            alert = outbox.next_due(self._conn, outbox.now_ms())
            if alert is None:
                break
            self.deliver(alert)
            tried += 1
        return tried

    def deliver(self, alert: Alert) -> Reply:
        reply = post(self._url, alert.payload, timeout_s=self._timeout_s)
        if reply.bucket_reset_s is not None:
            self._hold(reply.bucket_reset_s)
        fields = {"id": alert.id, "rule": alert.rule, "status": reply.status}
        if reply.status is not None and 200 <= reply.status < 300:
            outbox.mark_sent(self._conn, alert.id, message_id=reply.message_id)
            log("alert_sent", **fields, attempts=alert.attempts + 1)
        elif reply.status == 429:
            self.rate_limited += 1
            wait = reply.retry_after_s
            self._hold(wait if wait is not None else DEFAULT_RETRY_AFTER_S)
            log("alert_rate_limited", **fields, reason=reply.reason, retry_after_s=wait)
        elif reply.status in GONE:
            error = f"{reply.reason}: the webhook was deleted or its URL is wrong"
            outbox.mark_failed(self._conn, alert.id, error=error)
            log("alert_webhook_rejected", **fields, reason=error)
        elif reply.status is not None and reply.status < 500:
            outbox.mark_failed(self._conn, alert.id, error=reply.reason)
            log("alert_refused", **fields, reason=reply.reason)
        elif alert.attempts + 1 >= MAX_ATTEMPTS:
            error = f"gave up after {MAX_ATTEMPTS} attempts; last: {reply.reason}"
            outbox.mark_failed(self._conn, alert.id, error=error)
            log("alert_given_up", **fields, reason=error)
        else:
            delay_s = min(self._backoff_base_s * 2**alert.attempts, BACKOFF_MAX_S)
            at = outbox.now_ms() + int(delay_s * 1000)
            outbox.retry_later(self._conn, alert.id, at=at, error=reply.reason)
            log("alert_retry", **fields, reason=reply.reason, retry_in_s=delay_s)
        return reply

    def _hold(self, seconds: float) -> None:
        self._bucket_free_at = max(self._bucket_free_at, time.monotonic() + seconds)

    def _wait_for_work(self, stop: threading.Event, version: int) -> None:
        # A commit by another connection (the worker enqueueing) moves `data_version`; a retry
        # coming due does not, so the wait also ends at the next due time.
        wake = outbox.next_wake(self._conn)
        idle_s = IDLE_MAX_S if wake is None else (wake - outbox.now_ms()) / 1000
        wait_for_commit(
            self._conn,
            version,
            min(max(idle_s, 0), IDLE_MAX_S),
            poll_s=POLL_S,
            pause=stop.wait,
        )


@contextmanager
def running_sender(config: Config) -> Iterator[None]:
    """A sender thread delivering `config`'s outbox for the duration of the block."""
    url = config.alerts.webhook_url
    if url is None:
        if config.alerts.rules:
            log("alerts_undelivered", reason="alert rules are set but no webhook_url")
        _record_webhook(config, configured=False)
        yield
        return
    _record_webhook(config, configured=True)
    conn = connect(config.state_db, durable=False)
    try:
        with in_background(Sender(conn, url, timeout_s=config.alerts.timeout_s)):
            yield
    finally:
        conn.close()


def _record_webhook(config: Config, *, configured: bool) -> None:
    """Whether the running worker delivers alerts at all, for the dashboard: without a webhook
    they stay pending for good, and its view says why instead of looking stuck."""
    try:
        conn = connect(config.state_db, durable=False)
        try:
            with write_transaction(conn):
                # The table is the outbox's (migrated by the worker's alerts hook before this).
                conn.execute("INSERT OR REPLACE INTO alert_delivery VALUES (1, ?)", (configured,))
        finally:
            conn.close()
    except (sqlite3.Error, StorageError) as exc:
        # Only the dashboard's explanation is missing then; delivery itself does not need it.
        log("alert_delivery_unrecorded", reason=str(exc))


@contextmanager
def in_background(sender: Sender) -> Iterator[None]:
    """`sender.run` in a thread until the block ends (a delivery in flight is finished first)."""
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), name="alert-sender")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _bucket_reset(headers: Any) -> float | None:
    if headers.get("X-RateLimit-Remaining") != "0":
        return None
    return _float(headers.get("X-RateLimit-Reset-After"))


def _json(content: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _float(value: Any) -> float | None:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
