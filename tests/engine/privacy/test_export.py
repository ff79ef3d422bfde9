"""What an export hands the data subject of the raw events: theirs, and nothing of the site's."""

from __future__ import annotations

import orjson

from bond.storage.eventlog import NewEvent
from engine.privacy.export import export_person
from tests.engine.harness import Engine


def test_raw_events_leave_out_the_sources_write_key(engine: Engine) -> None:
    # A single-event request may carry the key in its body, which is stored as sent.
    engine.send("identify", anon="laptop", user="ann", ts=100, writeKey="server-s3cret")
    engine.log.append(
        [
            NewEvent(
                *("default", "odd", "track", "laptop", "ann", "Odd", 200, 200, None, None),
                b'{"writeKey" : "server-s3cret","properties":{"x":1e999}}',
            )
        ],
        [],
    )
    engine.run()

    document = export_person(engine.worker.conn, engine.log, engine.person(user_id="ann")["id"])
    assert document is not None
    raw = document["raw_events"]
    assert [e["seq"] for e in raw] == [1, 2]
    assert "writeKey" not in raw[0]["event"] and raw[0]["event"]["userId"] == "ann"
    # orjson cannot read 1e999; the event is given as the text that came, key removed.
    assert raw[1]["event"] == '{"writeKey":null,"properties":{"x":1e999}}'
    assert b"server-s3cret" not in orjson.dumps(document)
