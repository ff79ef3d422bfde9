"""CORS for browser senders.

Browsers send text/plain beacons with credentials, and drop the response of a credentialed
request unless the exact origin is echoed with Allow-Credentials, so `*` is never an answer here.
Which origins may send is decided per source once the write key is known (see ingest).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bond.config import Config

PREFLIGHT_MAX_AGE_S = 86400


def echo_headers(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        # Without this a cross-origin SDK cannot read how long a 429 or 503 asks it to wait.
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


def preflight(request: Request, config: Config) -> Response:
    """Answer an OPTIONS preflight: allowed when any source accepts the origin.

    A preflight carries neither body nor credentials, so the source is not known yet; the actual
    request is checked against its own source's allowlist.
    """
    origin = request.headers.get("origin", "").rstrip("/")
    if not origin or not any(s.allows_origin(origin) for s in config.sources):
        return Response(status_code=403, headers={"Vary": "Origin"})
    return Response(
        status_code=204,
        headers={
            **echo_headers(origin),
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            # analytics.js adds X-Retry-Count to every retry: without it each retry is blocked.
            "Access-Control-Allow-Headers": (
                "Content-Type, Authorization, Content-Encoding, X-Retry-Count"
            ),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        },
    )
