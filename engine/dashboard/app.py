"""The dashboard's routes, mounted by the read API under /dashboard.

Pages and their static files, the login form, the JSON each view reads (behind the session
cookie; the read API's bearer token is for scripts, the cookie for people) and the live feed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bond.config import Config
from bond.errors import BadRequest, NotFound, RequestError, Unauthorized, Unavailable
from bond.http import handle_request_error, json_response
from bond.serving import http_url
from engine.dashboard import alerts, households, people, stitches
from engine.dashboard.headers import SecurityHeaders
from engine.dashboard.health import Health
from engine.dashboard.live import LIVE_PAGE, LogTail, live_events
from engine.dashboard.login import COOKIE_PATH, Login
from engine.dashboard.session import Sessions
from engine.dashboard.stream import Feed, Position, start_position
from engine.timeline import Cursor, IdentityReader

STATIC = Path(__file__).resolve().parent / "static"
PAGE = 50
# Each open dashboard polls the databases a few times a second; past this many, say so.
MAX_STREAMS = 20
# SQLite integers are 64-bit; a larger id or cursor from a URL could never match anything.
LARGEST = 2**62

Handler = Callable[[Request], Awaitable[Response]]


def create_dashboard(config: Config, reader: Callable[[], IdentityReader]) -> Starlette:
    sessions = Sessions(config.admin_token) if config.admin_token else None
    login = Login(config, sessions)
    tail = LogTail(config.events_db)
    metrics_url = f"{http_url(config.collector.host, config.collector.port)}/metrics"
    health = Health(tail, reader, metrics_url)
    feed = Feed(tail, reader, health)
    streams = {"open": 0}

    def api(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if login.session(request) is None:
                raise Unauthorized("your dashboard session ended: log in again")
            try:
                return await handler(request)
            except sqlite3.Error as exc:
                raise Unavailable(f"the state database cannot be read: {exc}") from exc

        return endpoint

    def person_id(request: Request) -> int:
        requested = int(request.path_params["person_id"])
        found = reader().resolve(requested) if requested < LARGEST else None
        if found is None:
            raise NotFound(f"no person {requested}")
        return found

    async def index(request: Request) -> Response:
        if login.session(request) is None:
            return RedirectResponse(f"{COOKIE_PATH}/login", 303)
        return FileResponse(STATIC / "index.html")

    async def session(request: Request) -> Response:
        current = login.session(request)
        assert current is not None and sessions is not None
        return json_response({"csrf": sessions.csrf_token(current)})

    async def live(request: Request) -> Response:
        limit = max(1, min(int_param(request, "limit", LIVE_PAGE), 200))
        shown = tail.latest(limit)
        # The stream carries on right after what this page shows: nothing missed, nothing twice.
        position = Position(shown[-1].seq if shown else 0, stitches.newest_id(reader()))
        applied = int(reader().status()["offset"])
        events = live_events(shown, reader(), applied)
        return json_response({"events": events[::-1], "position": position.encode()})

    async def stream(request: Request) -> Response:
        position = Position.decode(request.headers.get("last-event-id")) or Position.decode(
            request.query_params.get("from")
        )
        if streams["open"] >= MAX_STREAMS:
            raise Unavailable(f"{MAX_STREAMS} dashboards are already open; close one")

        async def counted() -> AsyncIterator[bytes]:
            streams["open"] += 1
            try:
                async for chunk in feed.stream(position or start_position(tail, reader())):
                    yield chunk
            finally:
                streams["open"] -= 1

        return StreamingResponse(
            counted(),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def stitch_list(request: Request) -> Response:
        before = optional_int(request, "before")
        return json_response(
            stitches.stitches_page(reader(), int_param(request, "limit", PAGE), before)
        )

    async def people_list(request: Request) -> Response:
        before = people.people_cursor(request.query_params.get("before"))
        limit = int_param(request, "limit", PAGE)
        return json_response(people.people_page(reader(), limit, before))

    async def search(request: Request) -> Response:
        found = people.search(reader(), request.query_params.get("q", ""))
        return json_response({"person_id": found})

    async def person(request: Request) -> Response:
        return json_response(people.person_page(reader(), person_id(request)))

    async def timeline(request: Request) -> Response:
        before = request.query_params.get("before")
        try:
            cursor = Cursor.decode(before) if before else None
        except ValueError:
            raise BadRequest("before must be a cursor from a previous page's 'next'") from None
        limit = int_param(request, "limit", PAGE)
        return json_response(people.timeline_page(reader(), person_id(request), limit, cursor))

    async def orders(request: Request) -> Response:
        return json_response(people.orders(reader(), person_id(request)))

    async def household_list(request: Request) -> Response:
        before = optional_int(request, "before")
        limit = int_param(request, "limit", PAGE)
        return json_response(households.households_page(reader(), limit, before))

    async def household(request: Request) -> Response:
        return json_response(households.household(reader(), person_id(request)))

    async def alert_list(request: Request) -> Response:
        before = optional_int(request, "before")
        limit = int_param(request, "limit", PAGE)
        return json_response(alerts.alerts_page(reader(), limit, before))

    async def health_now(request: Request) -> Response:
        now = await health.sample()
        return json_response({"now": now, "history": list(health.history)})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/login", login.form, methods=["GET"]),
            Route("/login", login.submit, methods=["POST"]),
            Route("/logout", login.logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            Route("/api/session", api(session)),
            Route("/api/live", api(live)),
            Route("/api/stream", api(stream)),
            Route("/api/stitches", api(stitch_list)),
            Route("/api/people", api(people_list)),
            Route("/api/people/search", api(search)),
            Route("/api/persons/{person_id:int}", api(person)),
            Route("/api/persons/{person_id:int}/timeline", api(timeline)),
            Route("/api/persons/{person_id:int}/orders", api(orders)),
            Route("/api/households", api(household_list)),
            Route("/api/households/{person_id:int}", api(household)),
            Route("/api/alerts", api(alert_list)),
            Route("/api/health", api(health_now)),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={RequestError: handle_request_error},
    )


def int_param(request: Request, name: str, default: int) -> int:
    value = optional_int(request, name)
    return default if value is None else value


def optional_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if abs(number) >= LARGEST:
        raise BadRequest(f"{name} is out of range")
    return number
