"""Reading a request body within limits: size, content type, gzip with a decompression budget."""

from __future__ import annotations

import zlib

import orjson
from starlette.requests import Request

from bond.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# text/plain is what browsers send to avoid a CORS preflight; servers send JSON.
_ACCEPTED_TYPES = ("application/json", "text/plain", "")


async def read_json(
    request: Request, *, max_body_bytes: int, max_decompressed_bytes: int
) -> object:
    """The parsed JSON body, or a RequestError saying what is wrong with it."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not accepted; send application/json or text/plain"
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; use gzip or none"
        )

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise PayloadTooLarge(
            f"body of {declared} bytes exceeds the limit of {max_body_bytes} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            raise PayloadTooLarge(f"body exceeds the limit of {max_body_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)

    if encoding == "gzip":
        raw = _gunzip(raw, budget=max_decompressed_bytes)
    if not raw:
        raise BadRequest("the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc


def _gunzip(data: bytes, *, budget: int) -> bytes:
    # Inflate at most budget+1 bytes: a gzip bomb is refused having cost a bounded amount.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, budget + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid gzip: {exc}") from exc
    if len(out) > budget or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"gzip body inflates past the limit of {budget} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return out
