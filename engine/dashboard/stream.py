"""The live feed: one server-sent event stream per open dashboard.

Three kinds of message, each a JSON `data` line:
- `events`: new events from the log, oldest first, each with its person;
- `stitches`: new identity events (identifications, merges, refusals);
- `health`: the newest health sample, once a second.
Each message's id is "<log seq>.<identity event id>", so an EventSource that reconnects (it does
so by itself) sends it back as Last-Event-ID and carries on where it stopped. The health message
each second also keeps proxies from closing a quiet stream.

An event the worker has not applied yet waits up to HOLD_S for it, so it arrives with its
person; past that it is shown without one (the worker may be down: the feed stays live).

A stream more than CATCH_UP events (or identity events) behind skips to the newest that many:
a page back after a long time away, or more arriving than a poll sends (MAX_BATCH events,
STITCH_BATCH identity events), which left it further behind at every poll.

A stream ends when the server begins to stop, so that `bond api` stops at once with open
dashboards (which reconnect to the next one by themselves) rather than wait for uvicorn to
cancel their streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bond import serving
from engine.dashboard.health import Health
from engine.dashboard.live import MAX_BATCH, LogTail, live_events
from engine.dashboard.stitches import newest_id, stitches_after
from engine.timeline import IdentityReader

POLL_S = 0.2
HOLD_S = 1.0
HEALTH_EVERY_S = 1.0
STITCH_BATCH = 100
RECONNECT_MS = 2000
CATCH_UP = 500


@dataclass
class Position:
    """Where a stream is: the last log seq and identity event id it has sent."""

    seq: int
    stitch: int

    def encode(self) -> str:
        return f"{self.seq}.{self.stitch}"

    @staticmethod
    def decode(text: str | None) -> Position | None:
        seq, _, stitch = (text or "").partition(".")
        if not (seq.isascii() and seq.isdigit() and stitch.isascii() and stitch.isdigit()):
            return None
        return Position(int(seq), int(stitch))


def message(kind: str, data: Any, event_id: str | None = None) -> bytes:
    """One server-sent event. orjson writes no raw newline, so `data` is always one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def start_position(tail: LogTail, reader: IdentityReader) -> Position:
    """Now: a new stream sends only what happens from here on."""
    return Position(tail.head(), newest_id(reader))


@dataclass
class Feed:
    tail: LogTail
    reader: Callable[[], IdentityReader]
    health: Health
    clock: Callable[[], float] = time.monotonic
    poll_s: float = POLL_S
    stopping: Callable[[], bool] = serving.stopping

    async def stream(self, position: Position) -> AsyncGenerator[bytes, None]:
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        waiting_since: float | None = None
        last_health = self.clock() - HEALTH_EVERY_S
        behind = True  # a page may come back after a long time away
        while not self.stopping():
            now = self.clock()
            reader = self.reader()
            if behind:
                self._skip_to_newest(position, reader)
            out: list[bytes] = []
            events = self.tail.after(position.seq)
            if events:
                applied = int(reader.status()["offset"])
                ready = sum(1 for e in events if e.seq <= applied)
                if ready < len(events):
                    waiting_since = now if waiting_since is None else waiting_since
                    if now - waiting_since >= HOLD_S:
                        ready, waiting_since = len(events), None
                else:
                    waiting_since = None
                if ready:
                    position.seq = events[ready - 1].seq
                    shown = live_events(events[:ready], reader, applied)
                    out.append(message("events", shown, position.encode()))
            stitches, position.stitch = stitches_after(reader, position.stitch, STITCH_BATCH)
            # A full read may leave more than a poll sends: above MAX_BATCH / poll_s events a
            # second (a busy shop, a worker catching up), the stream fell further behind for as
            # long as the rate lasted, hours late yet shown as live.
            behind = len(events) >= MAX_BATCH or len(stitches) >= STITCH_BATCH
            if stitches:
                out.append(message("stitches", stitches, position.encode()))
            if now - last_health >= HEALTH_EVERY_S:
                last_health = now
                out.append(message("health", await self.health.sample(), position.encode()))
            if out:
                yield b"".join(out)
            await asyncio.sleep(self.poll_s)

    def _skip_to_newest(self, position: Position, reader: IdentityReader) -> None:
        """Skip to the newest CATCH_UP events and stitches: a page keeps no more than that, and
        a backlog of a day would take the stream minutes to send."""
        newest = start_position(self.tail, reader)
        position.seq = max(position.seq, newest.seq - CATCH_UP)
        position.stitch = max(position.stitch, newest.stitch - CATCH_UP)
