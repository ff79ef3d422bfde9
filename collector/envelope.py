"""What a request body holds: the write key, sentAt, and its events still as JSON.

msgspec finds the events' bounds in a batch without building them into objects, and each is
then decoded on its own by validate.decode_message. A body msgspec refuses is read again by
orjson, the slow way, so that each malformed request gets the reason it always got.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
import orjson

from bond.errors import BadRequest, EventInvalid
from collector.body import parse_json
from collector.validate import MAX_DEPTH, Message, decode_message


class Envelope(NamedTuple):
    write_key: object
    sent_at: object
    batch: object  # a list of each event's JSON, when the body holds a list
    first: Message | None  # a single-event request's event, decoded already
    # A batch's own `context` and `integrations`, which Segment applies to each of its events.
    shared: dict[str, dict[str, Any]] | None = None


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]
    writeKey: Any = None  # Segment's names
    sentAt: Any = None
    context: Any = None
    integrations: Any = None


_decode_batch = msgspec.json.Decoder(_Batch).decode
_SHARED = ("context", "integrations")


def batch_envelope(raw: bytes) -> Envelope:
    try:
        body = _decode_batch(raw)
    except msgspec.DecodeError:
        payload = _object(raw)
        batch = payload.get("batch")
        if isinstance(batch, list):
            try:
                batch = [orjson.dumps(message) for message in batch]
            except TypeError:  # orjson writes 254 levels at most
                raise _too_deep() from None
        return Envelope(
            payload.get("writeKey"), payload.get("sentAt"), batch, None, _shared(payload)
        )
    except RecursionError:
        raise _too_deep() from None
    shared = None
    if body.context is not None or body.integrations is not None:
        shared = _shared({"context": body.context, "integrations": body.integrations})
    return Envelope(body.writeKey, body.sentAt, body.batch, None, shared)


def single_envelope(raw: bytes) -> Envelope:
    try:
        message = decode_message(raw)
    except EventInvalid as invalid:
        if invalid.code == "too_deep":
            raise _too_deep() from None  # nor could its write key be read
        # An object whose event is invalid is rejected as an event, with the event's reason.
        payload = _object(raw)
        return Envelope(payload.get("writeKey"), payload.get("sentAt"), [raw], None)
    return Envelope(message.writeKey, message.sentAt, [raw], message)


def _too_deep() -> BadRequest:
    return BadRequest(
        f"the body nests objects and arrays too deep to read; events may nest {MAX_DEPTH} levels"
    )


def _shared(payload: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    shared = {}
    for name in _SHARED:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise BadRequest(f"the batch's {name} must be a JSON object")
        if value:
            shared[name] = value
    return shared or None


def _object(raw: bytes) -> dict[str, Any]:
    payload = parse_json(raw)
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    return payload
