"""Reading a request body within limits: size, content type, gzip with a decompression budget."""

from __future__ import annotations

import zlib
from typing import NamedTuple

import orjson
from starlette.types import Receive, Scope

from bond.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# text/plain is what browsers send to avoid a CORS preflight; servers send JSON.
_ACCEPTED_TYPES = frozenset({"application/json", "text/plain", ""})
# NamedTuple's generated __new__ is a Python call; this runs once per request.
_new_headers = tuple.__new__
_GZIP_MAGIC = b"\x1f\x8b"
# Bytes fed to zlib at a time after the first gzip member: see _gunzip.
_MEMBER_PIECE = 4096


class Headers(NamedTuple):
    """The handful of request headers ingest reads, found in one pass over the raw list."""

    content_type: str = ""
    content_encoding: str = "identity"
    content_length: int | None = None
    origin: str | None = None
    authorization: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, scope: Scope) -> Headers:
        kind = b""
        encoding = length = origin = authorization = user_agent = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                kind = value
            elif name == b"content-length":
                length = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"origin":
                origin = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-encoding":
                encoding = value
        return _new_headers(
            cls,
            (
                _media_type(kind.decode("latin-1")),
                encoding.decode("latin-1").strip().lower() if encoding is not None else "identity",
                int(length) if length is not None and length.isdigit() else None,
                origin.decode("latin-1") if origin is not None else None,
                authorization.decode("latin-1") if authorization is not None else None,
                user_agent.decode("latin-1") if user_agent is not None else None,
            ),
        )


def _media_type(content_type: str) -> str:
    if content_type in _ACCEPTED_TYPES:  # as senders write it, nearly always
        return content_type
    return content_type.split(";", 1)[0].strip().lower()


async def read_body(
    headers: Headers, receive: Receive, *, max_body_bytes: int, max_decompressed_bytes: int
) -> bytes:
    """The body, inflated and not empty, or a RequestError saying what is wrong with it."""
    if headers.content_type not in _ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {headers.content_type!r} is not accepted; "
            "send application/json or text/plain"
        )
    if headers.content_encoding not in ("identity", "gzip"):
        raise UnsupportedMediaType(
            f"Content-Encoding {headers.content_encoding!r} is not supported; use gzip or none"
        )
    declared = headers.content_length
    if declared is not None and declared > max_body_bytes:
        raise PayloadTooLarge(
            f"body of {declared} bytes exceeds the limit of {max_body_bytes} bytes"
        )
    raw = await _read(receive, max_body_bytes)
    if headers.content_encoding == "gzip":
        raw = _gunzip(raw, budget=max_decompressed_bytes)
    if not raw:
        raise BadRequest("the body is empty; send a JSON object")
    return raw


def parse_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        if not message.get("more_body", False):
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


def _gunzip(data: bytes, *, budget: int) -> bytes:
    # RFC 1952 lets a body be several gzip members end to end. All of them share one budget:
    # at most budget+1 bytes are ever inflated, so a gzip bomb is refused at a bounded cost.
    members: list[bytes] = []
    left = budget
    body = memoryview(data)
    start = 0
    # The first member, nearly always the only one, gets the whole body in one call. Later ones
    # are fed in pieces: zlib copies whatever follows a member's end, and copying the rest of
    # the body once per member would make thousands of tiny members cost quadratic time.
    piece = len(body)
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not inflater.eof:
            if start == len(body):
                raise BadRequest("the gzip body is truncated")
            chunk = body[start : start + piece]
            try:
                out = inflater.decompress(chunk, left + 1)
            except zlib.error as exc:
                raise BadRequest(f"the body is not valid gzip: {exc}") from exc
            # zlib stops early only on filling left+1 bytes, so this also catches held-back input.
            if len(out) > left:
                raise PayloadTooLarge(f"gzip body inflates past the limit of {budget} bytes")
            members.append(out)
            left -= len(out)
            start += len(chunk) - len(inflater.unused_data)
        if start == len(body):
            return b"".join(members)
        if body[start : start + 2] != _GZIP_MAGIC:
            raise BadRequest(
                f"the body has {len(body) - start} bytes after its gzip data that are not "
                "another gzip member; send only the gzip stream"
            )
        piece = _MEMBER_PIECE
