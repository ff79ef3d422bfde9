"""Per-event validation and enrichment: a Segment message in, an event-log row or a reason out.

This runs once for every event, so it is written for speed: plain dict lookups, one
serialisation, and no work that could be done once per request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from bond.config import IpPolicy
from bond.errors import EventInvalid
from bond.ids import clean_id
from bond.storage.eventlog import NewEvent
from collector.ip import apply_policy

TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_MAX_NAME = 200
_MAX_MESSAGE_ID = 200
# Older timestamps are malformed rather than backfills (a zero or a seconds-vs-ms mix-up).
_EARLIEST_MS = 946_684_800_000  # 2000-01-01
_new_row = tuple.__new__


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
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EventInvalid(
            f"{field} {value[:40]!r} is not an ISO-8601 time", code="bad_timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def to_event(message: object, facts: RequestFacts, path_type: str | None) -> tuple[NewEvent, bool]:
    """The row to append for one message, and whether its timestamp had to be clamped.

    Raises EventInvalid with a reason a developer can act on.
    """
    if not isinstance(message, dict):
        raise EventInvalid("each event must be a JSON object", code="not_object")
    body = orjson.dumps(message)
    if len(body) > facts.max_event_bytes:
        raise EventInvalid(
            f"event is {len(body)} bytes; the limit is {facts.max_event_bytes}", code="too_large"
        )

    get = message.get
    kind = get("type", path_type)
    if kind not in TYPES:
        raise EventInvalid(
            f"type {kind!r} is not one of {', '.join(sorted(TYPES))}", code="bad_type"
        )
    if path_type is not None and kind != path_type:
        raise EventInvalid(
            f"type {kind!r} does not match the endpoint /v1/{path_type}", code="bad_type"
        )

    anonymous_id = clean_id(get("anonymousId"))
    user_id = clean_id(get("userId"))
    if anonymous_id is None and user_id is None:
        raise EventInvalid(
            "an anonymousId or userId is required (placeholders such as 'undefined', 'null', "
            "'0' or '[object Object]' do not count)",
            code="missing_id",
        )
    context, properties, traits = get("context"), get("properties"), get("traits")
    integrations = get("integrations")
    if not (
        (context is None or isinstance(context, dict))
        and (properties is None or isinstance(properties, dict))
        and (traits is None or isinstance(traits, dict))
        and (integrations is None or isinstance(integrations, dict))
    ):
        name = next(n for n in _OBJECT_FIELDS if not isinstance(get(n), dict | None))
        raise EventInvalid(f"{name} must be a JSON object", code="bad_field")

    event: str | None = None
    if kind == "track":
        label = get("event")
        if not isinstance(label, str) or not label.strip() or len(label) > _MAX_NAME:
            raise EventInvalid(
                f"a track event needs an 'event' name of 1 to {_MAX_NAME} characters",
                code="bad_field",
            )
        event = label
    elif kind in ("page", "screen"):
        label = get("name")
        event = label if isinstance(label, str) and len(label) <= _MAX_NAME else None
    elif kind == "alias":
        if clean_id(get("previousId")) is None or user_id is None:
            raise EventInvalid("an alias needs both a previousId and a userId", code="missing_id")
    elif kind == "group" and clean_id(get("groupId")) is None:
        raise EventInvalid("a group call needs a groupId", code="missing_id")

    message_id = get("messageId")
    if message_id is None:
        message_id = str(uuid.uuid4())
    elif not isinstance(message_id, str) or not message_id or len(message_id) > _MAX_MESSAGE_ID:
        raise EventInvalid(
            f"messageId must be a string of 1 to {_MAX_MESSAGE_ID} characters", code="bad_field"
        )

    timestamp, clamped = _event_time(message, facts)
    ip, user_agent = facts.ip, facts.user_agent
    if context:
        # Server-side senders pass the visitor's address in context.ip; it gets the same policy.
        context_ip = context.get("ip")
        if isinstance(context_ip, str):
            ip = apply_policy(context_ip, facts.ip_policy)
        user_agent = context.get("userAgent", user_agent)
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
                user_agent if isinstance(user_agent, str) else None,
                body,
            ),
        ),
        clamped,
    )


def _event_time(message: dict[str, object], facts: RequestFacts) -> tuple[int, bool]:
    # The client's clock may be off; what it knows precisely is the gap between the event and
    # sending it, so that gap is applied to our own receipt time. But receipt minus sending also
    # holds the request's transit time, which differs per request: applied to a clock that is
    # right, it can swap a click sent by beacon with the page view sent a second later. Real
    # skew is either small (a synced clock) or large (a wrong one), so only a large one is fixed.
    original = message.get("originalTimestamp", message.get("timestamp"))
    received = facts.received_at
    if original is None:
        return received, False
    happened = parse_time(original, "timestamp")
    sent_raw = message.get("sentAt")
    sent = parse_time(sent_raw, "sentAt") if sent_raw is not None else facts.sent_at
    timestamp = happened
    if sent is not None and abs(received - sent) > facts.skew_tolerance_ms:
        timestamp = received - (sent - happened)
    if timestamp < _EARLIEST_MS:
        raise EventInvalid("timestamp is before the year 2000", code="bad_timestamp")
    if timestamp > received + facts.future_tolerance_ms:
        return received, True
    return timestamp, False
