"""Response helpers shared by Bond's web apps: JSON bodies and the mapping of errors to HTTP."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from bond.errors import RequestError


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_response(error: RequestError, headers: dict[str, str] | None = None) -> Response:
    body = {"error": error.code, "reason": error.reason}
    return json_response(body, error.status_code, {**error.headers, **(headers or {})})


async def handle_request_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: every RequestError becomes its status with a JSON reason."""
    assert isinstance(exc, RequestError)
    return error_response(exc)
