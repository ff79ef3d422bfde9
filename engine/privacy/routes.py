"""The admin API's privacy calls, mounted by the read API beside its own routes.

- `POST /api/erasures` with `{"email": ...}` or `{"user_id": ...}` (and optionally
  `"requested_by"`, recorded in the audit entry) queues an erasure: 202 and its id. The worker
  carries it out between batches.
- `GET /api/erasures/{id}`: its state, step, and once done the counts of what was erased.
- `GET /api/persons/{id}/export`: everything held about the person, as one JSON document,
  streamed.
- `GET /api/privacy/audit?limit=`: the newest audit entries (what was erased, when, by whom).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bond.config import Config
from bond.errors import BadRequest, NotFound
from bond.http import json_response
from bond.storage.eventlog import SqliteEventLog
from bond.storage.sqlite import connect
from engine.privacy import audit, requests
from engine.privacy.erase import asked_forms
from engine.privacy.export import export_chunks
from engine.privacy.schema import migrate_privacy
from engine.schema import migrate_identity
from engine.timeline import page_limit, whole_number

Handler = Callable[[Request], Awaitable[Response]]
MAX_REQUESTED_BY = 100
MAX_AUDIT = 500


def privacy_routes(
    config: Config,
    guarded: Callable[[Handler], Handler],
) -> list[Route]:
    queues: list[sqlite3.Connection] = []

    def queue() -> sqlite3.Connection:
        # The read API's own connection is read-only; queuing is the one write it makes.
        if not queues:
            conn = connect(config.state_db, durable=False)
            migrate_identity(conn)
            migrate_privacy(conn)
            queues.append(conn)
        return queues[0]

    async def create_erasure(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise BadRequest('the body must be JSON: {"email": ...} or {"user_id": ...}') from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        kinds: list[requests.Kind] = [k for k in ("email", "user_id") if k in body]
        if len(kinds) != 1 or not isinstance(body[kinds[0]], str):
            raise BadRequest("give exactly one of email or user_id, as a string")
        kind, value = kinds[0], body[kinds[0]]
        if not asked_forms(kind, value):
            raise BadRequest(f"that {kind} is not a valid {kind.replace('_', ' ')}")
        by = body.get("requested_by", "admin")
        if not isinstance(by, str) or not by or len(by) > MAX_REQUESTED_BY:
            raise BadRequest(f"requested_by must be a string of 1 to {MAX_REQUESTED_BY} characters")
        request_id = requests.enqueue(queue(), kind, value, f"api:{by}")
        return json_response(
            {"id": request_id, "state": "queued", "url": f"/api/erasures/{request_id}"}, 202
        )

    async def get_erasure(request: Request) -> Response:
        text = request.path_params["erasure_id"]
        erasure_id = whole_number(text)
        found = requests.public(queue(), erasure_id) if erasure_id is not None else None
        if found is None:
            raise NotFound(f"no erasure {text}")
        return json_response(found)

    async def export(request: Request) -> Response:
        text = request.path_params["person_id"]
        requested = whole_number(text)
        if requested is None:
            raise NotFound(f"no person {text}")
        # Read in the thread pool, a page of events at a time, on connections of its own: a
        # long history was built whole in memory on the event loop, and held up every other
        # request of the API until it was done (seconds for 50,000 events).
        state = connect(config.state_db, durable=False)
        state.execute("PRAGMA query_only = ON")
        log_ = SqliteEventLog(config.events_db)
        try:
            chunks = await run_in_threadpool(export_chunks, state, log_, requested)
        except BaseException:
            _close(state, log_)
            raise
        if chunks is None:
            _close(state, log_)
            raise NotFound(f"no person {text}")
        return StreamingResponse(_closing(chunks, state, log_), media_type="application/json")

    async def audit_log(request: Request) -> Response:
        limit = page_limit(request.query_params.get("limit"), default=50, most=MAX_AUDIT)
        return json_response({"entries": audit.entries(queue(), limit)})

    return [
        Route("/api/privacy/audit", guarded(audit_log)),
        Route("/api/erasures", guarded(create_erasure), methods=["POST"]),
        # Any text as the id, so one that cannot exist answers not_found like a missing one.
        Route("/api/erasures/{erasure_id}", guarded(get_erasure)),
        Route("/api/persons/{person_id}/export", guarded(export)),
    ]


def _closing(
    chunks: Iterator[bytes], state: sqlite3.Connection, log_: SqliteEventLog
) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        _close(state, log_)


def _close(state: sqlite3.Connection, log_: SqliteEventLog) -> None:
    state.close()
    log_.close()
