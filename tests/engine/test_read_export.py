"""An export is written a page of events at a time, so a response can stream it: a person with
a long history is never one document in memory."""

from __future__ import annotations

import orjson

from bond.storage.eventlog import NewEvent
from engine.privacy.export import export_chunks, export_person
from engine.timeline import MAX_PAGE
from tests.engine.harness import Engine

EVENTS = 2 * MAX_PAGE + 100


def test_an_export_is_written_a_page_of_events_at_a_time(engine: Engine) -> None:
    engine.log.append(
        [
            NewEvent(
                *("default", f"view-{n}", "track", "laptop", None, "Viewed", n, n, None, None),
                orjson.dumps({"type": "track", "event": "Viewed", "properties": {"n": n}}),
            )
            for n in range(1, EVENTS)
        ],
        [],
    )
    engine.identify("laptop", EVENTS, user="ann")
    engine.run()
    ann = engine.person(user_id="ann")["id"]

    chunks = export_chunks(engine.worker.conn, engine.log, ann)

    assert chunks is not None
    written = list(chunks)
    document = orjson.loads(b"".join(written))
    whole = export_person(engine.worker.conn, engine.log, ann)
    assert whole is not None
    assert {**document, "exported_at": 0} == {**whole, "exported_at": 0}
    assert len(document["timeline"]) == len(document["raw_events"]) == EVENTS
    # The timeline and the raw events come a page at a time: no chunk holds more than a page.
    assert max(chunk.count(b'"seq":') for chunk in written) <= MAX_PAGE


def test_no_export_for_no_person(engine: Engine) -> None:
    engine.track("laptop", 1)
    engine.run()

    assert export_chunks(engine.worker.conn, engine.log, 999) is None
