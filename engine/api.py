"""The read API: persons, stitched timelines and identity events, for the admin token only.

Its routes live under /api, and the live dashboard (engine/dashboard) under /dashboard, so the
app can sit beside the collector (which owns /v1 and the SDK paths):
`Mount("", app=create_read_app(config))` as the collector's last route, or alone under
`bond api`. It opens state.db on first use, so it needs no lifespan of its own.
"""

from __future__ import annotations

import hmac
import sqlite3
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from bond.config import Config
from bond.errors import BadRequest, Forbidden, NotFound, RequestError, Unauthorized
from bond.http import handle_request_error, json_response
from bond.metrics import Counter, Registry
from bond.storage.sqlite import connect
from engine.alerts import outbox
from engine.dashboard import people
from engine.dashboard.app import create_dashboard
from engine.dashboard.health import backlog
from engine.dashboard.live import LogTail
from engine.households.store import person_households
from engine.identity_map import identity_map_routes
from engine.privacy.routes import privacy_routes
from engine.privacy.schema import migrate_privacy
from engine.schema import migrate_identity
from engine.timeline import MAX_PAGE, Cursor, IdentityReader, page_limit, whole_number
from engine.verification import is_verified, migrate_verification

Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_PAGE = 50


def create_read_app(config: Config) -> Starlette:
    state: dict[str, IdentityReader] = {}
    tail = LogTail(config.events_db)

    def reader() -> IdentityReader:
        if "reader" not in state:
            conn = connect(config.state_db, durable=False)
            migrate_identity(conn)
            migrate_verification(conn)
            # And the households and alerts tables an older state holds, read by their views.
            migrate_privacy(conn)
            conn.execute("PRAGMA query_only = ON")
            state["reader"] = IdentityReader(conn)
        return state["reader"]

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            _authorize(request, config)
            try:
                return await handler(request)
            except sqlite3.Error as exc:
                return json_response({"error": "unavailable", "reason": str(exc)}, 503)

        return endpoint

    async def find_person(request: Request) -> Response:
        params = request.query_params
        keys = [k for k in ("email", "user_id", "anonymous_id") if k in params]
        if len(keys) != 1:
            raise BadRequest("give exactly one of email, user_id or anonymous_id")
        person_id = reader().find(**{keys[0]: params[keys[0]]})
        if person_id is None:
            raise NotFound(f"no person with that {keys[0]}")
        return _profile(reader(), person_id)

    async def people_list(request: Request) -> Response:
        before = people.people_cursor(request.query_params.get("before"))
        return json_response(people.people_page(reader(), _limit(request), before))

    async def get_person(request: Request) -> Response:
        return _profile(reader(), _person_id(reader(), request))

    async def timeline(request: Request) -> Response:
        person_id = _person_id(reader(), request)
        limit = _limit(request)
        before = request.query_params.get("before")
        try:
            cursor = Cursor.decode(before) if before else None
        except ValueError:
            raise BadRequest("before must be a cursor from a previous page's 'next'") from None
        page = reader().timeline(person_id, limit, cursor)
        profile = reader().profile(person_id)
        assert profile is not None
        return json_response(
            {
                "person_id": person_id,
                "event_count": profile["event_count"],
                "events": page.events,
                "next": page.next.encode() if page.next else None,
            }
        )

    async def identity_events(request: Request) -> Response:
        limit, person_id = _limit(request), _id_param(request, "person_id")
        events = reader().identity_events(
            limit, before_id=_id_param(request, "before"), person_id=person_id
        )
        next_id = events[-1]["id"] if len(events) == limit else None
        # A full last page is followed by nothing: no cursor to an empty page.
        if next_id is not None and not reader().identity_events(1, next_id, person_id):
            next_id = None
        return json_response({"events": events, "next": next_id})

    async def households(request: Request) -> Response:
        person_id = _person_id(reader(), request)
        return json_response(person_households(reader().conn, person_id))

    async def alerts(request: Request) -> Response:
        limit, conn = _limit(request), reader().conn
        recent = outbox.recent(conn, limit, before=_id_param(request, "before"))
        next_id = recent[-1].id if len(recent) == limit else None
        if next_id is not None and not outbox.recent(conn, 1, before=next_id):
            next_id = None
        return json_response({"alerts": [alert.public() for alert in recent], "next": next_id})

    async def status(request: Request) -> Response:
        # The numbers are only as fresh as the worker: say how much of the log it has not
        # applied yet, and how long the oldest of that has waited (a stopped worker shows here).
        current = reader().status()
        waiting = backlog(tail, int(current["offset"]), int(time.time() * 1000))
        return json_response({**current, **waiting})

    async def metrics(request: Request) -> Response:
        registry = Registry()
        changes = registry.add(
            Counter(
                "bond_identity_changes_total",
                "Stitches, merges and refusals applied by the worker.",
                ("kind", "reason"),
            )
        )
        offset = registry.add(
            Counter("bond_engine_offset", "Last event log seq applied by the worker.")
        )
        current = reader().status()
        offset.inc(current["offset"])
        for name, n in current["identity_changes"].items():
            kind, _, reason = name.partition(":")
            changes.inc(n, kind, reason)
        return PlainTextResponse(registry.render(), media_type="text/plain; version=0.0.4")

    async def home(request: Request) -> Response:
        return RedirectResponse("/dashboard/", 303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_response({"error": "http_error", "reason": str(exc.detail)}, exc.status_code)

    return Starlette(
        routes=[
            Route("/api/people", guarded(people_list)),
            Route("/api/persons", guarded(find_person)),
            # Any text as the id, so one no person can have answers not_found like a missing one.
            Route("/api/persons/{person_id}", guarded(get_person)),
            Route("/api/persons/{person_id}/timeline", guarded(timeline)),
            Route("/api/persons/{person_id}/household", guarded(households)),
            Route("/api/identity-events", guarded(identity_events)),
            Route("/api/alerts", guarded(alerts)),
            Route("/api/status", guarded(status)),
            Route("/api/metrics", guarded(metrics)),
            *privacy_routes(config, guarded),
            *identity_map_routes(config, guarded),
            Route("/", home),
            Mount("/dashboard", app=create_dashboard(config, reader)),
        ],
        exception_handlers={RequestError: handle_request_error, HTTPException: http_error},
    )


def _authorize(request: Request, config: Config) -> None:
    if not config.admin_token:
        raise Forbidden("the read API is disabled: set BOND_ADMIN_TOKEN (or admin_token)")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "send the admin token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if hmac.compare_digest(token.encode(), config.admin_token.encode()):
        return
    if config.source_for_key(token) is not None:
        raise Forbidden("a write key only sends events; the read API needs the admin token")
    raise Forbidden("that token is not the admin token")


def _person_id(reader: IdentityReader, request: Request) -> int:
    text = request.path_params["person_id"]
    requested = whole_number(text)
    person_id = reader.resolve(requested) if requested is not None else None
    if person_id is None:
        raise NotFound(f"no person {text}")
    return person_id


def _profile(reader: IdentityReader, person_id: int) -> Response:
    profile = reader.profile(person_id)
    if profile is None:
        raise NotFound(f"no person {person_id}")
    return json_response({**profile, "verified": is_verified(reader.conn, person_id)})


def _limit(request: Request) -> int:
    return page_limit(request.query_params.get("limit"), default=DEFAULT_PAGE, most=MAX_PAGE)


def _id_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if not value:
        return None
    number = whole_number(value)
    if number is None:
        raise BadRequest(f"{name} must be an id: a whole number below 2**63")
    return number


def serve_read_api(config: Config, *, host: str, port: int) -> int:
    """Run the read API and dashboard until stopped; the exit status for the command line."""
    from bond.serving import serve

    return serve(
        "read_api",
        lambda: create_read_app(config),
        host,
        port,
        path="/api",
        # An open dashboard's live feed never ends by itself; on shutdown it gets two seconds.
        timeout_graceful_shutdown=2,
    )
