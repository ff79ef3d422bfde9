"""An engine on a real event log and state.db, driven in-process one batch at a time.

The `engine` fixture (root conftest.py) hands one to a test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from bond.config import Config, EngineConfig
from bond.storage.eventlog import NewEvent, SqliteEventLog
from engine.timeline import IdentityReader
from engine.worker import Worker


def append_pages(log: SqliteEventLog, anon: str, timestamps: Iterable[int]) -> None:
    """A page view of browser `anon` at each timestamp, all appended in one transaction: a long
    history in a moment, where an append per event would take seconds."""
    events = []
    for ts in timestamps:
        message_id = f"page-{anon}-{ts}"
        message = {"type": "page", "messageId": message_id, "anonymousId": anon}
        body = orjson.dumps({**message, "properties": {"path": "/"}})
        events.append(
            NewEvent("default", message_id, "page", anon, None, None, ts, ts, None, None, body)
        )
    log.append(events, [])


class Engine:
    def __init__(self, data_dir: Path, *, batch_size: int = 100, max_user_ids: int = 5) -> None:
        self.config = Config(
            data_dir=data_dir,
            engine=EngineConfig(batch_size=batch_size, max_user_ids_per_person=max_user_ids),
        )
        self.log = SqliteEventLog(self.config.events_db)
        self.worker = Worker(self.config)
        self.reader = IdentityReader(self.worker.conn)
        self._ids = itertools.count(1)

    def send(
        self,
        type_: str,
        *,
        anon: str | None = None,
        user: str | None = None,
        ts: int = 1_000,
        event: str | None = None,
        **body: Any,
    ) -> None:
        message_id = f"m-{next(self._ids)}"
        message = {"type": type_, "messageId": message_id, **body}
        if anon is not None:
            message["anonymousId"] = anon
        if user is not None:
            message["userId"] = user
        if event is not None:
            message["event"] = event
        self.log.append(
            [
                NewEvent(
                    "default",
                    message_id,
                    type_,
                    anon,
                    user,
                    event,
                    ts,
                    ts,
                    None,
                    None,
                    orjson.dumps(message),
                )
            ],
            [],
        )

    def track(
        self, anon: str | None, ts: int, event: str = "Viewed", user: str | None = None
    ) -> None:
        self.send("track", anon=anon, user=user, ts=ts, event=event, properties={"at": ts})

    def identify(
        self, anon: str | None, ts: int, user: str | None = None, email: str | None = None
    ) -> None:
        traits = {"email": email} if email is not None else {}
        self.send("identify", anon=anon, user=user, ts=ts, traits=traits)

    def alias(self, anon: str | None, previous: str, user: str, ts: int) -> None:
        self.send("alias", anon=anon, user=user, ts=ts, previousId=previous)

    def run(self) -> None:
        while self.worker.run_once():
            pass

    def person(self, **key: str) -> dict[str, Any]:
        person_id = self.reader.find(**key)
        assert person_id is not None, f"no person for {key}"
        profile = self.reader.profile(person_id)
        assert profile is not None
        return profile

    def timeline(self, **key: str) -> list[dict[str, Any]]:
        person_id = self.reader.find(**key)
        assert person_id is not None, f"no person for {key}"
        return self.reader.timeline(person_id, 500).events

    def changes(self) -> list[dict[str, Any]]:
        return list(reversed(self.reader.identity_events(500)))

    def close(self) -> None:
        self.worker.close()
        self.log.close()
