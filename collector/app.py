"""The collector app: ingest, CORS, the SDK files, health and metrics. It holds no engine logic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bond import __version__
from bond.config import Config
from bond.errors import RequestError
from bond.http import handle_request_error, json_response
from bond.logs import log
from collector.cors import preflight
from collector.ingest import Ingest
from collector.sdk_files import SdkFiles, load_builds
from collector.telemetry import CollectorMetrics
from collector.writer import Writer

HEALTH_TIMEOUT_S = 2.0


class IngestFirst:
    """Send `POST /v1/*` straight to ingest; everything else goes through Starlette.

    Ingest is the one route that sees every event, and routing plus the middleware stack cost
    more per request than validating an event does. Ingest maps its own errors to responses.
    """

    def __init__(self, ingest: Ingest, app: Starlette) -> None:
        self.ingest = ingest
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith("/v1/")
        ):
            await self.ingest(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(config: Config) -> IngestFirst:
    """Open the event log (failing fast when it cannot be) and wire the routes around it."""
    writer = Writer(config.events_db, queue_max_events=config.collector.queue_max_events)
    metrics = CollectorMetrics(
        queue_depth=lambda: writer.queue_depth, writable=lambda: float(writer.healthy)
    )
    writer.on_commit.append(metrics.on_commit)
    writer.on_exit.append(lambda: metrics.writer_exits.inc(1))
    writer.on_failure.append(lambda: metrics.commit_failures.inc(1))
    ingest = Ingest(config, writer, metrics)  # opens and migrates the log first
    sdk = SdkFiles(load_builds())

    async def options(request: Request) -> Response:
        response = preflight(request, config)
        metrics.requests.inc(1, "preflight", str(response.status_code))
        return response

    async def healthz(request: Request) -> Response:
        # An empty group commit proves the log takes a write transaction right now; the writer
        # stays unhealthy a moment after a failed commit even so (see collector/writer.py).
        try:
            await asyncio.wait_for(writer.submit([], []), HEALTH_TIMEOUT_S)
        except (RequestError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, RequestError) else "the writer did not answer"
            return json_response(
                {"status": "unavailable", "reason": writer.last_error or reason}, 503
            )
        if not writer.healthy:
            return json_response({"status": "unavailable", "reason": writer.last_error}, 503)
        return json_response({"status": "ok", "queue_events": writer.queue_depth})

    async def metrics_page(request: Request) -> Response:
        return PlainTextResponse(
            metrics.registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def index(request: Request) -> Response:
        return json_response(
            {
                "service": "bond-collector",
                "version": __version__,
                "ingest": ["/v1/batch", "/v1/{identify,track,page,screen,group,alias}"],
                "sdk": "/sdk/v1/bond.js",
            }
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        reason = {
            404: f"no route {path}",
            405: f"{request.method} is not allowed on {path}",
        }.get(exc.status_code, exc.detail)
        return json_response({"error": "http_error", "reason": reason}, exc.status_code)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await writer.start()
        log("collector_started", events_db=str(config.events_db), sources=len(config.sources))
        try:
            yield
        finally:
            ingest.tally.flush()
            await writer.stop()
            log("collector_stopped")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/v1/{kind}", options, methods=["OPTIONS"]),
            Route("/healthz", healthz),
            Route("/metrics", metrics_page),
            Route("/sdk/v1/bond.js", sdk.latest_v1),
            Route("/sdk/integrity.json", sdk.integrity),
            Route("/sdk/{name}", sdk.pinned),
        ],
        exception_handlers={RequestError: handle_request_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    return IngestFirst(ingest, app)
