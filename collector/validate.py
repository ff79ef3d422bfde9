"""Per-event validation and enrichment: a Segment message in, an event-log row or a reason out.

This runs once for every event, so it is written for speed. msgspec decodes each event straight
into the handful of fields validation reads (`Message`), in C: the rest of the event, its
properties and most of its context, is skipped over rather than built into dicts. The row keeps
the event's JSON as the client sent it, so nothing is serialised again either.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec
import orjson

from bond.config import IpPolicy
from bond.errors import EventInvalid
from bond.ids import clean_id
from bond.storage.eventlog import NewEvent
from collector.ip import apply_policy

TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_OBJECT_FIELDS = ("properties", "traits", "integrations")  # context is checked by decoding
_MAX_NAME = 200
_MAX_MESSAGE_ID = 200
# Older timestamps are malformed rather than backfills (a zero or a seconds-vs-ms mix-up).
_EARLIEST_MS = 946_684_800_000  # 2000-01-01
# Far beyond what analytics payloads use (a few levels), well inside what the engine's JSON
# library writes back (254) and what the decoders here recurse through.
MAX_DEPTH = 64
# What to_event says beside the row, as bits: nearly always 0.
CLAMPED = 1  # a timestamp in the future, set to the receipt time
SENT_AT_IGNORED = 2  # an event's own sentAt was not a time: no clock-skew correction
_new_row = tuple.__new__
_from_iso = datetime.fromisoformat
UNSET = msgspec.UNSET
ABSENT = msgspec.Raw(b"null")  # an object field the event does not have
_OPEN_BRACE = 0x7B


class Context(msgspec.Struct):
    """The parts of `context` ingest reads; UNSET tells a missing key from a null one."""

    ip: Any = None
    userAgent: Any = UNSET  # Segment's names
    bond: Any = UNSET  # the collector's own namespace (see signing.py)


class Message(msgspec.Struct):
    """The fields of a Segment message that ingest reads, typed loosely: the checks are ours."""

    type: Any = UNSET
    anonymousId: Any = None
    userId: Any = None
    messageId: Any = None
    event: Any = None
    name: Any = None
    previousId: Any = None
    groupId: Any = None
    timestamp: Any = None
    originalTimestamp: Any = UNSET
    sentAt: Any = None
    writeKey: Any = None  # a single-event request's own
    context: Context | None = None
    properties: msgspec.Raw = ABSENT
    traits: msgspec.Raw = ABSENT
    integrations: msgspec.Raw = ABSENT


_decode_message = msgspec.json.Decoder(Message).decode


def decode_message(raw: bytes | msgspec.Raw) -> Message:
    """Decode one event; raises EventInvalid when it is not an object or its context is not."""
    try:
        return _decode_message(raw)
    except msgspec.ValidationError as exc:
        # Everything but `context` is typed Any or Raw, so it is the only field that can fail.
        if "`$.context`" in str(exc):
            raise EventInvalid("context must be a JSON object", code="bad_field") from None
        raise EventInvalid("each event must be a JSON object", code="not_object") from None
    except msgspec.DecodeError:
        raise EventInvalid("the event is not valid JSON", code="not_object") from None
    except RecursionError:
        raise _too_deep() from None


def readable(raw: bytes) -> dict[str, Any]:
    """An event to edit, decoded whole; raises EventInvalid for what orjson cannot read or
    write back (a number past a double's range such as 1e999, deep nesting).

    Only events that must be edited come here: decoding every event whole would cost the
    collector nearly three times what msgspec's pass over it does, for events that the
    worker applies anyway (without the properties it cannot read, see engine/worker.py).
    """
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventInvalid(f"the event cannot be stored: {exc.msg}", code="unreadable") from None
    # Each level needs a bracket, so counting them rules out nearly every event at C speed.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _depth(event) > MAX_DEPTH:
        raise _too_deep()
    if not isinstance(event, dict):
        raise EventInvalid("each event must be a JSON object", code="not_object")
    return event


def _depth(value: object) -> int:
    """How deep `value` nests objects and arrays, counted no further than MAX_DEPTH + 1."""
    deepest, pending = 0, [(value, 1)] if isinstance(value, dict | list) else []
    while pending and deepest <= MAX_DEPTH:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        pending += [(child, depth + 1) for child in children if isinstance(child, dict | list)]
    return deepest


def _too_deep() -> EventInvalid:
    return EventInvalid(
        f"the event nests objects and arrays more than {MAX_DEPTH} levels deep", code="too_deep"
    )


def has_bond_context(message: Message) -> bool:
    """Whether the client wrote into `context.bond`, which only the collector may write."""
    return message.context is not None and message.context.bond is not UNSET


def makes_claims(message: Message, path_type: str | None) -> bool:
    """Whether the event claims an identity a signing source must check (see signing.py)."""
    kind = message.type if message.type is not UNSET else path_type
    return message.userId is not None or kind == "identify"


class RequestFacts(NamedTuple):
    """What is known once per request and shared by all its events."""

    source: str
    received_at: int
    sent_at: int | None
    ip: str | None  # the connection's address, already minimised by ip_policy
    ip_policy: IpPolicy
    user_agent: str | None
    max_event_bytes: int
    future_tolerance_ms: int
    skew_tolerance_ms: int


def parse_time(value: object, field: str) -> int:
    """UTC epoch milliseconds from an ISO-8601 string; naive times are taken as UTC."""
    if not isinstance(value, str):
        raise EventInvalid(f"{field} must be an ISO-8601 string", code="bad_timestamp")
    if value[-1:] == "z":  # RFC 3339 allows it; fromisoformat takes only "Z"
        value = value[:-1] + "Z"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EventInvalid(
            f"{field} {value[:40]!r} is not an ISO-8601 time", code="bad_timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def to_event(
    message: Message, raw: bytes, facts: RequestFacts, path_type: str | None
) -> tuple[NewEvent, int]:
    """The row to append for one message (`raw`, as sent), and what to warn of (CLAMPED,
    SENT_AT_IGNORED: bits, 0 for nearly every event).

    Raises EventInvalid with a reason a developer can act on.
    """
    if len(raw) > facts.max_event_bytes:
        raise EventInvalid(
            f"event is {len(raw)} bytes; the limit is {facts.max_event_bytes}", code="too_large"
        )
    kind = message.type
    if kind is UNSET:
        kind = path_type
    if kind.__class__ is not str or kind not in TYPES:
        raise EventInvalid(
            f"type {kind!r} is not one of {', '.join(sorted(TYPES))}", code="bad_type"
        )
    if path_type is not None and kind != path_type:
        raise EventInvalid(
            f"type {kind!r} does not match the endpoint /v1/{path_type}", code="bad_type"
        )

    anonymous_id = message.anonymousId
    if anonymous_id is not None:
        anonymous_id = clean_id(anonymous_id)
    user_id = message.userId
    if user_id is not None:
        user_id = clean_id(user_id)
    if anonymous_id is None and user_id is None:
        raise EventInvalid(
            "an anonymousId or userId is required (placeholders such as 'undefined', 'null', "
            "'0' or '[object Object]' do not count)",
            code="missing_id",
        )
    properties, traits, integrations = message.properties, message.traits, message.integrations
    if not (
        (properties is ABSENT or _is_object(properties))
        and (traits is ABSENT or _is_object(traits))
        and (integrations is ABSENT or _is_object(integrations))
    ):
        name = next(n for n in _OBJECT_FIELDS if not _is_object(getattr(message, n)))
        raise EventInvalid(f"{name} must be a JSON object", code="bad_field")

    event: str | None = None
    if kind == "track":
        label = message.event
        if label.__class__ is not str or not label or label.isspace() or len(label) > _MAX_NAME:
            raise EventInvalid(
                f"a track event needs an 'event' name of 1 to {_MAX_NAME} characters",
                code="bad_field",
            )
        event = label
    elif kind == "page" or kind == "screen":
        label = message.name
        event = label if label.__class__ is str and len(label) <= _MAX_NAME else None
    elif kind == "alias":
        if clean_id(message.previousId) is None or user_id is None:
            raise EventInvalid("an alias needs both a previousId and a userId", code="missing_id")
    elif kind == "group" and clean_id(message.groupId) is None:
        raise EventInvalid("a group call needs a groupId", code="missing_id")

    message_id = message.messageId
    if message_id is None:
        message_id = str(uuid.uuid4())
    elif message_id.__class__ is not str or not message_id or len(message_id) > _MAX_MESSAGE_ID:
        raise EventInvalid(
            f"messageId must be a string of 1 to {_MAX_MESSAGE_ID} characters", code="bad_field"
        )

    timestamp, notes = _event_time(message, facts)
    ip, user_agent = facts.ip, facts.user_agent
    context = message.context
    if context is not None:
        # Server-side senders pass the visitor's address in context.ip; it gets the same policy.
        if context.ip.__class__ is str:
            ip = apply_policy(context.ip, facts.ip_policy)
        if context.userAgent is not UNSET:
            user_agent = context.userAgent
    # tuple.__new__ skips NamedTuple's generated __new__, a Python call costing as much again.
    return (
        _new_row(
            NewEvent,
            (
                facts.source,
                message_id,
                kind,
                anonymous_id,
                user_id,
                event,
                timestamp,
                facts.received_at,
                ip,
                user_agent if user_agent.__class__ is str else None,
                raw,
            ),
        ),
        notes,
    )


def _is_object(value: msgspec.Raw) -> bool:
    view = memoryview(value)
    return view[0] == _OPEN_BRACE or view.tobytes() == b"null"


def _event_time(message: Message, facts: RequestFacts) -> tuple[int, int]:
    # The client's clock may be off; what it knows precisely is the gap between the event and
    # sending it, so that gap is applied to our own receipt time. But receipt minus sending also
    # holds the request's transit time, which differs per request: applied to a clock that is
    # right, it can swap a click sent by beacon with the page view sent a second later. Real
    # skew is either small (a synced clock) or large (a wrong one), so only a large one is fixed.
    original = message.originalTimestamp
    if original is UNSET or original is None:  # serialisers write null for a field not set
        original = message.timestamp
    received = facts.received_at
    if original is None:
        return received, 0
    try:  # parse_time without its checks, for the well-formed times nearly all events carry
        moment = _from_iso(original)
        happened = int(moment.timestamp() * 1000) if moment.tzinfo is not None else -1
    except (TypeError, ValueError):
        happened = -1
    if happened < 0:
        happened = parse_time(original, "timestamp")  # raises, or handles a naive time
    sent_raw, sent, notes = message.sentAt, facts.sent_at, 0
    if sent_raw is not None:
        # sentAt only corrects a wrong clock: a bad one costs the event that, not its place.
        try:
            sent = parse_time(sent_raw, "sentAt")
        except EventInvalid:
            sent, notes = None, SENT_AT_IGNORED
    timestamp = happened
    if sent is not None and abs(received - sent) > facts.skew_tolerance_ms:
        timestamp = received - (sent - happened)
    if timestamp < _EARLIEST_MS:
        raise EventInvalid("timestamp is before the year 2000", code="bad_timestamp")
    if timestamp > received + facts.future_tolerance_ms:
        return received, notes | CLAMPED
    return timestamp, notes
