"""The single writer: group commits to the event log, acknowledging each request after commit.

Requests hand their rows to one writer thread and wait. While a group is being committed, new
requests pile up and all go into the next group together, so the cost of a durable commit is
shared by everything that arrived during the previous one.

The hand-offs are kept to one each way per group: the event loop puts the whole group on a
queue, and the thread calls back into the loop once, which then wakes every request of the group.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from bond.errors import Overloaded, StorageError, Unavailable
from bond.logs import log
from bond.storage.eventlog import EventLog, NewEvent, RejectedEvent

# Called after every commit with (events, duplicates among them, rejected, seconds).
CommitListener = Callable[[int, int, int, float], None]


class _Group(NamedTuple):
    events: list[NewEvent]
    rejected: list[RejectedEvent]
    waiters: list[asyncio.Future[None]]


class Writer:
    def __init__(self, log_: EventLog, *, queue_max_events: int) -> None:
        self._log = log_
        self._queue_max = queue_max_events
        self._next = _Group([], [], [])
        self._queued_events = 0  # in the next group and in the one being committed
        self._committing = False
        self._jobs: queue.SimpleQueue[_Group | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="bond-writer", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained: asyncio.Future[None] | None = None
        self._closing = False
        self.on_commit: list[CommitListener] = []
        self.healthy = True
        self.last_error: str | None = None

    @property
    def queue_depth(self) -> int:
        return self._queued_events

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        if self._committing:
            assert self._loop is not None
            self._drained = self._loop.create_future()
            await self._drained
        self._jobs.put(None)
        self._thread.join()

    async def submit(self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> None:
        """Return once the rows are committed; raise Overloaded or Unavailable otherwise."""
        if self._closing:
            raise Unavailable("the collector is shutting down; retry shortly")
        if self._queued_events + len(events) > self._queue_max:
            raise Overloaded(
                f"the write queue holds {self._queued_events} events; retry after a pause",
                retry_after_s=1,
            )
        assert self._loop is not None
        done = self._loop.create_future()
        group = self._next
        group.events.extend(events)
        group.rejected.extend(rejected)
        group.waiters.append(done)
        self._queued_events += len(events)
        if not self._committing:
            self._hand_over()
        await done

    def _hand_over(self) -> None:
        group, self._next = self._next, _Group([], [], [])
        self._committing = True
        self._jobs.put(group)

    def _work(self) -> None:
        """The writer thread: commit each group, then report back to the loop in one call."""
        assert self._loop is not None
        while (group := self._jobs.get()) is not None:
            started = time.perf_counter()
            try:
                inserted = self._log.append(group.events, group.rejected)
            except StorageError as exc:
                outcome: int | str = str(exc)
            except Exception as exc:  # a bug must fail its requests, not leave them waiting
                outcome = f"unexpected error: {exc!r}"
            else:
                outcome = inserted
            self._loop.call_soon_threadsafe(
                self._committed, group, outcome, time.perf_counter() - started
            )

    def _committed(self, group: _Group, outcome: int | str, seconds: float) -> None:
        self._committing = False
        self._queued_events -= len(group.events)
        if isinstance(outcome, str):
            self._fail(group, outcome)
        else:
            self.healthy, self.last_error = True, None
            for listener in self.on_commit:
                listener(
                    len(group.events), len(group.events) - outcome, len(group.rejected), seconds
                )
            for done in group.waiters:
                if not done.done():
                    done.set_result(None)
        if self._next.waiters:
            self._hand_over()
        elif self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _fail(self, group: _Group, reason: str) -> None:
        self.healthy, self.last_error = False, reason
        log("event_log_write_failed", reason=reason, requests=len(group.waiters))
        for done in group.waiters:
            if not done.done():
                done.set_exception(Unavailable("the event log could not be written; retry later"))
