"""The single writer: group commits to the event log, acknowledging each request after commit.

Requests hand their rows to one writer thread and wait. While a group is being committed, new
requests pile up and all go into the next group together, so the cost of a durable commit is
shared by everything that arrived during the previous one.

The thread takes the next group itself as soon as a commit ends, and calls back into the event
loop once per group to wake its requests: a busy loop answers a callback only after the work
already queued on it, and the commits must not wait for that.
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
        self._queued_events = 0  # waiting for a commit or in one; kept by the loop's thread
        # The next group, and whether the thread is waiting for one, are shared with the thread.
        self._lock = threading.Lock()
        self._next = _Group([], [], [])
        self._idle = True
        self._wake: queue.SimpleQueue[bool] = queue.SimpleQueue()  # False: stop
        self._thread = threading.Thread(target=self._work, name="bond-writer", daemon=True)
        self._between: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
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
        self._wake.put(False)
        await asyncio.to_thread(self._thread.join)

    def submit(
        self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]
    ) -> asyncio.Future[None]:
        """A future done once the rows are committed; raises Overloaded or Unavailable at once.

        A plain function handing back the future, not a coroutine awaiting it: one coroutine
        fewer to create and resume on every request.
        """
        if self._closing:
            raise Unavailable("the collector is shutting down; retry shortly")
        if self._queued_events + len(events) > self._queue_max:
            raise Overloaded(
                f"the write queue holds {self._queued_events} events; retry after a pause",
                retry_after_s=1,
            )
        assert self._loop is not None
        done = self._loop.create_future()
        with self._lock:
            group = self._next
            group.events.extend(events)
            group.rejected.extend(rejected)
            group.waiters.append(done)
            idle, self._idle = self._idle, False
        if idle:
            self._wake.put(True)
        self._queued_events += len(events)
        return done

    def between_commits(self, task: Callable[[], object]) -> None:
        """Run `task` on the writer thread after its next commit (its requests already woken).

        For work that must not overlap a commit of this writer's, such as finishing a
        checkpoint on its own connection.
        """
        self._between.put(task)

    def _work(self) -> None:
        """The writer thread: commit groups until none is waiting, then sleep until woken."""
        assert self._loop is not None
        while self._wake.get():
            while (group := self._take()) is not None:
                started = time.perf_counter()
                try:
                    outcome: int | str = self._log.append(group.events, group.rejected)
                except StorageError as exc:
                    outcome = str(exc)
                except Exception as exc:  # a bug must fail its requests, not leave them waiting
                    outcome = f"unexpected error: {exc!r}"
                self._loop.call_soon_threadsafe(
                    self._committed, group, outcome, time.perf_counter() - started
                )
                while not self._between.empty():
                    self._run(self._between.get())

    @staticmethod
    def _run(task: Callable[[], object]) -> None:
        try:
            task()
        except Exception as exc:  # the writer thread must outlive a failed task
            log("writer_task_failed", reason=repr(exc))

    def _take(self) -> _Group | None:
        with self._lock:
            group = self._next
            if not group.waiters:
                self._idle = True
                return None
            self._next = _Group([], [], [])
            return group

    def _committed(self, group: _Group, outcome: int | str, seconds: float) -> None:
        self._queued_events -= len(group.events)
        if isinstance(outcome, str):
            self._fail(group, outcome)
            return
        self.healthy, self.last_error = True, None
        for listener in self.on_commit:
            listener(len(group.events), len(group.events) - outcome, len(group.rejected), seconds)
        for done in group.waiters:
            if not done.done():
                done.set_result(None)

    def _fail(self, group: _Group, reason: str) -> None:
        self.healthy, self.last_error = False, reason
        log("event_log_write_failed", reason=reason, requests=len(group.waiters))
        for done in group.waiters:
            if not done.done():
                done.set_exception(Unavailable("the event log could not be written; retry later"))
