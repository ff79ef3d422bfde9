"""Everything held about a person, as one JSON document (GDPR Art. 15 and 20).

The person's identifiers and traits, the anonymous persons folded into them, their stitched
timeline (every page), their identity changes, household membership and attributions, alerts
about them, rows of any other table keyed by their person ids (such as verification), and the
raw events the event log still holds for their browsers and ids: as sent, with the receipt time,
the (minimised) IP and the user agent.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import orjson

from bond.storage.eventlog import SqliteEventLog, StoredEvent
from engine.alerts import outbox
from engine.households.store import person_households
from engine.privacy.keys import KeyRing
from engine.privacy.plan import plan_for_person
from engine.privacy.tables import has_table, other_person_tables
from engine.timeline import MAX_PAGE, Cursor, IdentityReader

FORMAT = "bond-export/1"

_WRITE_KEY = re.compile(rb'"writeKey"\s*:\s*"(?:[^"\\]|\\.)*"')


class Batches(NamedTuple):
    """A part of the document that grows with the person's history, read a page at a time."""

    read: Callable[[], Iterator[list[Any]]]


def export_person(
    conn: sqlite3.Connection, log_: SqliteEventLog, person_id: int
) -> dict[str, Any] | None:
    sections = _sections(conn, log_, person_id)
    if sections is None:
        return None
    return {
        name: [item for batch in value.read() for item in batch]
        if isinstance(value, Batches)
        else value
        for name, value in sections
    }


def export_chunks(
    conn: sqlite3.Connection, log_: SqliteEventLog, person_id: int
) -> Iterator[bytes] | None:
    """The document of `export_person` as JSON text, a page of events per chunk, for a
    response to stream: a person with a long history is never held whole. None: no person."""
    sections = _sections(conn, log_, person_id)
    return None if sections is None else _write(sections)


def _sections(
    conn: sqlite3.Connection, log_: SqliteEventLog, person_id: int
) -> list[tuple[str, Any]] | None:
    reader = IdentityReader(conn)
    root = reader.resolve(person_id)
    profile = reader.profile(root) if root is not None else None
    if root is None or profile is None:
        return None
    plan = plan_for_person(conn, KeyRing(conn), root)
    persons = plan.persons
    # By their browsers and ids only: an event of someone else that merely mentions their
    # email is that other person's, and an erasure deletes it, but it is not theirs to read.
    raw = plan.log_match()._replace(needles=[])
    return [
        ("format", FORMAT),
        ("exported_at", int(time.time() * 1000)),
        ("person", profile),
        ("merged_person_ids", [p for p in persons if p != root]),
        ("timeline", Batches(lambda: _timeline(reader, root))),
        ("identity_events", Batches(lambda: _identity_events(reader, root, set(persons)))),
        (
            "household",
            person_households(conn, root) if has_table(conn, "households_models") else None,
        ),
        ("alerts", _alerts(conn, persons)),
        ("other", _other_rows(conn, persons)),
        ("raw_events", Batches(lambda: _raw_events(log_.matching(raw)))),
    ]


def _write(sections: list[tuple[str, Any]]) -> Iterator[bytes]:
    separator = b"{"
    for name, value in sections:
        key = separator + orjson.dumps(name) + b":"
        separator = b","
        if not isinstance(value, Batches):
            yield key + orjson.dumps(value)
            continue
        yield key + b"["
        comma = b""
        for batch in value.read():
            if batch:
                yield comma + orjson.dumps(batch)[1:-1]  # the items, without the brackets
                comma = b","
        yield b"]"
    yield b"}"


def _timeline(reader: IdentityReader, person_id: int) -> Iterator[list[dict[str, Any]]]:
    cursor: Cursor | None = None
    while True:
        page = reader.timeline(person_id, MAX_PAGE, cursor)
        yield page.events
        if page.next is None:
            return
        cursor = page.next


def _identity_events(
    reader: IdentityReader, person_id: int, persons: set[int]
) -> Iterator[list[dict[str, Any]]]:
    before: int | None = None
    while True:
        page = reader.identity_events(MAX_PAGE, before, person_id)
        yield [e for e in page if e["person_id"] in persons]
        if len(page) < MAX_PAGE:
            return
        before = page[-1]["id"]


def _raw_events(events: list[StoredEvent]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), MAX_PAGE):
        yield [_raw(e) for e in events[start : start + MAX_PAGE]]


def _alerts(conn: sqlite3.Connection, persons: list[int]) -> list[dict[str, Any]]:
    if not has_table(conn, "alert_outbox"):
        return []
    return [{**a.public(), "payload": a.payload} for a in outbox.for_persons(conn, persons)]


def _other_rows(conn: sqlite3.Connection, persons: list[int]) -> dict[str, list[dict[str, Any]]]:
    marks = ",".join("?" * len(persons))
    found = {}
    for table in other_person_tables(conn):
        cursor = conn.execute(f"SELECT * FROM {table} WHERE person_id IN ({marks})", persons)
        names = [d[0] for d in cursor.description]
        found[table] = [
            {n: v.hex() if isinstance(v, bytes) else v for n, v in zip(names, row, strict=True)}
            for row in cursor.fetchall()
        ]
    return found


def _raw(event: StoredEvent) -> dict[str, Any]:
    try:
        sent: object = orjson.loads(event.body)
    except orjson.JSONDecodeError:  # a number past a double's range: the text as it came
        sent = _WRITE_KEY.sub(b'"writeKey":null', event.body).decode("utf-8", "replace")
    if isinstance(sent, dict):
        # A single-event request may carry its source's write key: the site's secret, not
        # the person's data.
        sent.pop("writeKey", None)
    return {
        "seq": event.seq,
        "source": event.source,
        "received_at": event.received_at,
        "timestamp": event.timestamp,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "event": sent,
    }
