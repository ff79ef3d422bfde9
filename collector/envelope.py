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
from collector.validate import Message, decode_message


class Envelope(NamedTuple):
    write_key: object
    sent_at: object
    batch: object  # a list of each event's JSON, when the body holds a list
    first: Message | None  # a single-event request's event, decoded already


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]
    writeKey: Any = None  # Segment's names
    sentAt: Any = None


_decode_batch = msgspec.json.Decoder(_Batch).decode


def batch_envelope(raw: bytes) -> Envelope:
    try:
        body = _decode_batch(raw)
    except msgspec.DecodeError:
        payload = _object(raw)
        batch = payload.get("batch")
        if isinstance(batch, list):
            batch = [orjson.dumps(message) for message in batch]
        return Envelope(payload.get("writeKey"), payload.get("sentAt"), batch, None)
    return Envelope(body.writeKey, body.sentAt, body.batch, None)


def single_envelope(raw: bytes) -> Envelope:
    try:
        message = decode_message(raw)
    except EventInvalid:
        # An object whose event is invalid is rejected as an event, with the event's reason.
        payload = _object(raw)
        return Envelope(payload.get("writeKey"), payload.get("sentAt"), [raw], None)
    return Envelope(message.writeKey, message.sentAt, [raw], message)


def _object(raw: bytes) -> dict[str, Any]:
    payload = parse_json(raw)
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    return payload
