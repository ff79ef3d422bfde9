"""The Segment endpoints: POST /v1/batch and POST /v1/{identify,track,page,screen,group,alias}."""

from __future__ import annotations

import base64
import binascii
import sqlite3
import time
import traceback
from pathlib import Path
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from bond.config import Config, Source
from bond.errors import (
    BadRequest,
    EventInvalid,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RequestError,
    StorageError,
    Unauthorized,
    Unavailable,
)
from bond.logs import Tally, log
from bond.outage import Outage
from bond.storage.eventlog import NewEvent, RejectedEvent, SqliteEventLog
from bond.storage.sqlite import refused_for_room
from collector.body import Headers, read_body
from collector.cors import echo_headers
from collector.envelope import Envelope, batch_envelope, single_envelope
from collector.ip import apply_policy
from collector.signing import IdentityReport, signers
from collector.telemetry import CollectorMetrics
from collector.validate import (
    ABSENT,
    CLAMPED,
    SENT_AT_IGNORED,
    TYPES,
    Message,
    RequestFacts,
    decode_message,
    has_bond_context,
    makes_claims,
    parse_time,
    readable,
    to_event,
)
from collector.writer import FAILED_RETRY_AFTER_S, Writer
from engine.privacy.suppression import SuppressionList, email_in

_new_facts = tuple.__new__
# What each path under /v1/ ingests: Segment's endpoint names, the one-letter paths analytics.js
# (@segment/analytics-next) posts to (/v1/t, /v1/p, ... and /v1/b when it batches), and
# /v1/import, the batch endpoint of Segment's older mobile libraries.
ENDPOINTS: dict[str, str] = {
    "batch": "batch",
    "b": "batch",
    "import": "batch",
    **{kind: kind for kind in TYPES},
    **{kind[0]: kind for kind in TYPES},
}
# Lines a second for each kind of problem (route, status, reason); the rest are counted in the
# ingest_summary line.
PROBLEM_LINES = 5


class Ingest:
    """The ingest endpoint as a plain ASGI app.

    It runs once per request on the hottest path Bond has, so it reads the raw scope and sends
    a pre-built response instead of going through Request and Response objects.
    """

    def __init__(self, config: Config, writer: Writer, metrics: CollectorMetrics) -> None:
        self.config = config
        self.limits = config.collector
        self.writer = writer
        self.metrics = metrics
        self.signers = signers(config)
        self.sources = {source.write_key: source for source in config.sources}
        # A clean request is counted into a line a second; anything else gets its own line.
        self.tally = Tally("ingest_summary")
        # Opening the list also creates or migrates the log before the commit process starts.
        # A disk too full to open an existing log (SQLite must make its shared-memory file) is
        # waited out as one that fills later is: ingest answers 503 until the log opens.
        # A first start with no room to create the log fails at once, as the worker's does.
        self.suppression: SuppressionList | None = None
        self._opening = Outage("event_log_open")
        self._open_again_at = 0.0
        existed = config.events_db.exists()
        try:
            self.suppression = self._open_suppression()
        except (StorageError, sqlite3.Error) as exc:
            if not (existed and refused_for_room(exc)):
                raise
            self._opening.failed(_open_failure(exc))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        kind = ENDPOINTS.get(scope["path"][4:])  # IngestFirst sends POST /v1/* here
        route = "batch" if kind == "batch" else "single"
        headers = Headers.of(scope)
        extra: dict[str, str] = {}
        try:
            status, body, notes = await self._ingest(scope, receive, kind, headers, route)
        except RequestError as error:
            status, body = error.status_code, {"error": error.code, "reason": error.reason}
            notes, extra = {"reason": error.code}, error.headers
        except Exception as exc:  # a bug: answered and logged as JSON like any other failure
            status = 500
            body = {"error": "internal_error", "reason": "the collector failed on this request"}
            # Where, not the message: an exception's text can quote the event it choked on.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            notes = {
                "reason": "internal_error",
                "exception": type(exc).__name__,
                "at": f"{Path(where.filename).name}:{where.lineno}",
            }
        # Errors echo the origin too: a browser SDK must see a 401 or 413 to stop retrying.
        await _respond(send, status, orjson.dumps(body), headers.origin, extra)
        self.metrics.requests.inc(1, route, str(status))
        if notes is not None and self.tally.own_line(_kind(route, status, notes), PROBLEM_LINES):
            ms = round((time.perf_counter() - started) * 1000, 2)
            log("ingest", route=route, status=status, ms=ms, **notes)

    async def _ingest(
        self, scope: Scope, receive: Receive, kind: str | None, headers: Headers, route: str
    ) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        """The status, the response body, and what to log about the request (None: routine)."""
        if kind is None:
            raise NotFound(
                f"no endpoint {scope['path']}; use /v1/batch or /v1/<{'|'.join(sorted(TYPES))}>"
            )
        suppression = self.suppression or self._suppression_now()
        raw = await read_body(
            headers,
            receive,
            max_body_bytes=self.limits.max_body_bytes,
            max_decompressed_bytes=self.limits.max_decompressed_bytes,
        )
        envelope = batch_envelope(raw) if kind == "batch" else single_envelope(raw)
        source = self._source(headers, envelope.write_key)
        if headers.origin and not source.allows_origin(headers.origin.rstrip("/")):
            raise Forbidden(
                f"origin {headers.origin} may not send to source {source.name!r}; add it to that "
                "source's origins in bond.toml (BOND_ALLOWED_ORIGINS sets the first source's)"
            )
        messages, path_type = self._messages(envelope, kind)
        facts, warnings = self._facts(scope, headers, envelope.sent_at, source)

        # Most requests are clean, so what only a problem needs is made on the first problem.
        events: list[NewEvent] = []
        rejected: list[RejectedEvent] = []
        rejections: list[dict[str, Any]] = []
        codes: dict[str, int] = {}
        identities: IdentityReport | None = None
        clamped = suppressed = unsent = 0
        signer = self.signers[source.write_key]
        vet, signing = signer.vet, signer.keyed is not None
        suppressing = suppression.active()
        first, shared = envelope.first, envelope.shared
        for index, sent in enumerate(messages):
            stored = sent if sent.__class__ is bytes else bytes(sent)
            try:
                message = first if first is not None else decode_message(stored)
                # The few events that must be edited are decoded whole and encoded again.
                whole = None
                if shared is not None:
                    whole = readable(stored)
                    stored = _with_shared(whole, shared)
                    message = decode_message(stored)
                verdict = None
                if has_bond_context(message) or (signing and makes_claims(message, path_type)):
                    if whole is None:
                        whole = readable(stored)
                    try:
                        verdict = vet(whole, path_type)
                    finally:
                        stored = orjson.dumps(whole)  # its claims, never its signature
                    message = decode_message(stored)
                event, flags = to_event(message, stored, facts, path_type)
            except EventInvalid as exc:
                rejections.append({"index": index, "reason": exc.reason})
                rejected.append(RejectedEvent(source.name, facts.received_at, exc.reason, stored))
                codes[exc.code] = codes.get(exc.code, 0) + 1
                continue
            if suppressing and suppression.blocks(
                event.anonymous_id, event.user_id, _email(message, event.type)
            ):
                suppressed += 1  # an erased person's: answered as accepted, never stored
                continue
            events.append(event)
            if flags:
                clamped += bool(flags & CLAMPED)
                unsent += bool(flags & SENT_AT_IGNORED)
            if verdict is not None:
                if identities is None:
                    identities = IdentityReport(source.name, facts.received_at)
                identities.add(index, verdict, event.message_id)
        if identities is not None:
            rejected += identities.rows
        await self.writer.submit(events, rejected)

        accepted = len(events) + suppressed
        # A request whose every event was refused is a client bug: say so with a 400.
        status = 400 if rejections and not accepted else 200
        body: dict[str, Any] = {
            "success": accepted > 0,
            "accepted": accepted,
            "rejected": rejections,
        }
        if clamped:
            self.metrics.clamped.inc(clamped)
            warnings.append(
                f"{clamped} event(s) had a timestamp in the future; set to receipt time"
            )
            log("timestamps_clamped", source=source.name, events=clamped)
        if unsent:
            warnings.append(
                f"{unsent} event(s) had a sentAt that is not an ISO-8601 time; clock-skew "
                "correction skipped for them"
            )
        if warnings:
            body["warnings"] = warnings
        if identities is not None and identities.verified:
            self.metrics.identities_verified.inc(identities.verified)
        if not (codes or suppressed or warnings or (identities and identities.refused)):
            self.tally.add((source.name, route, status))
            self.tally.add((source.name, "events"), len(events))
            return status, body, None

        notes: dict[str, Any] = {
            "source": source.name,
            "accepted": len(events),
            "rejected": len(rejections),
        }
        if codes:
            notes["reasons"] = codes
            for code, count in codes.items():
                self.metrics.rejected.inc(count, code)
        if suppressed:
            notes["suppressed"] = suppressed
            self.metrics.suppressed.inc(suppressed)
        if identities is not None and identities.refused:
            body["identity_rejected"] = identities.refused
            notes["identity_rejected"] = dict(identities.codes)
            for code, count in identities.codes.items():
                self.metrics.identities_rejected.inc(count, code)
        return status, body, notes

    def _open_suppression(self) -> SuppressionList:
        return SuppressionList(SqliteEventLog(self.config.events_db))

    def _suppression_now(self) -> SuppressionList:
        """The list, once the log can be opened; until then Unavailable, trying again at most
        once a second."""
        now = time.monotonic()
        if now >= self._open_again_at:
            self._open_again_at = now + 1.0
            try:
                self.suppression = self._open_suppression()
            except (StorageError, sqlite3.Error) as exc:
                self._opening.failed(_open_failure(exc))  # the log's path stays in the log
            else:
                self._opening.ended()
                return self.suppression
        raise Unavailable(
            "the event log cannot be opened (is its disk full?); nothing of this request was "
            "stored: retry later",
            retry_after_s=FAILED_RETRY_AFTER_S,
        )

    def _source(self, headers: Headers, write_key: object) -> Source:
        key = _basic_auth_key(headers.authorization) or write_key
        if not isinstance(key, str) or not key:
            raise Unauthorized(
                "no write key: send it as HTTP Basic auth (the key as user name) or as writeKey"
            )
        source = self.sources.get(key)
        if source is None:
            raise Unauthorized("unknown write key; check the key configured for this source")
        return source

    def _messages(self, envelope: Envelope, kind: str) -> tuple[list[Any], str | None]:
        messages = envelope.batch
        if kind != "batch":
            return messages, kind  # type: ignore[return-value]  # single_envelope's [raw]
        if not isinstance(messages, list):
            raise BadRequest("a batch body needs a 'batch' array of events")
        if not messages:
            raise BadRequest("the batch is empty")
        limit = self.limits.max_batch_events
        if len(messages) > limit:
            raise PayloadTooLarge(f"the batch holds {len(messages)} events; the limit is {limit}")
        return messages, None

    def _facts(
        self, scope: Scope, headers: Headers, sent: object, source: Source
    ) -> tuple[RequestFacts, list[str]]:
        warnings: list[str] = []
        sent_at = None
        if sent is not None:
            try:
                sent_at = parse_time(sent, "sentAt")
            except EventInvalid as exc:
                warnings.append(f"{exc.reason}; clock-skew correction skipped")
        client = scope["client"][0] if scope.get("client") else None
        limits = self.limits
        # The connection is the visitor only when it is their browser's: a site's server sending
        # for them (Segment's server libraries) would give each its own address and user agent.
        # Browsers send Origin with every POST, fetch or beacon, same-origin or not; servers don't.
        browser = headers.origin is not None
        # Positional through tuple.__new__: keyword NamedTuple construction costs a tenth of
        # this request's own work.
        facts = _new_facts(
            RequestFacts,
            (
                source.name,
                int(time.time() * 1000),
                sent_at,
                apply_policy(client, limits.ip) if browser else None,
                limits.ip,
                headers.user_agent if browser else None,
                limits.max_event_bytes,
                limits.future_tolerance_ms,
                limits.skew_tolerance_ms,
            ),
        )
        return facts, warnings


async def _respond(
    send: Send, status: int, body: bytes, origin: str | None, headers: dict[str, str]
) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
    ]
    if origin:
        headers = {**headers, **echo_headers(origin)}
    if headers:
        raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _with_shared(event: dict[str, Any], shared: dict[str, dict[str, Any]]) -> bytes:
    """The event with its batch's context and integrations under its own: Segment's rule for
    a batch's shared fields, in which the event's own keys win."""
    for name, values in shared.items():
        own = event.get(name)
        if own is None:
            event[name] = dict(values)
        elif isinstance(own, dict):
            event[name] = {**values, **own}
        # anything else is left for validation to refuse
    return orjson.dumps(event)


def _kind(route: str, status: int, notes: dict[str, Any]) -> tuple[object, ...]:
    """A problem's kind, for counting the lines past PROBLEM_LINES: its route, status, and
    reason (the error's, or the rejected events' reasons, or what else it noted)."""
    reason = (
        notes.get("reason")
        or ",".join(sorted(notes.get("reasons", ())))
        or ",".join(sorted(key for key in notes if key not in ("source", "accepted", "rejected")))
    )
    return (route, status, reason)


def _open_failure(exc: Exception) -> str:
    said = str(exc)
    if said.startswith("the event log"):
        return said
    return f"the event log cannot be opened: {said} (is its disk full?)"


def _basic_auth_key(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Authorization header is not valid Basic auth") from None
    return decoded.split(":", 1)[0] or None


def _email(message: Message, kind: str) -> str | None:
    """The email an identify gives its person, read only when the suppression list needs it."""
    if kind != "identify" or message.traits is ABSENT:
        return None
    return email_in(kind, {"traits": orjson.loads(memoryview(message.traits))})
