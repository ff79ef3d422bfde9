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
from pathlib import Path
from typing import NamedTuple

from bond.errors import Overloaded, StorageError, Unavailable
from bond.logs import log
from bond.storage.eventlog import EventLog, NewEvent, RejectedEvent, SqliteEventLog

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


class Checkpointer:
    """Copies the event log's WAL into its database from a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages,
    which a commit of batches does nearly every time; that commit, and every request waiting
    on it, then also waits for the copy and an fsync of the database. Here the writer's
    connection never checkpoints (`SqliteEventLog(checkpoints=False)`): this thread does, on
    its own connection, `interval_s` after a commit, with passive checkpoints that block no
    writer. Between two checkpoints a page written by many commits is copied once.
    """

    def __init__(self, path: Path, *, interval_s: float = 0.2) -> None:
        self._path = path
        self._interval_s = interval_s
        self._committed = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="bond-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def committed(self, *_: object) -> None:
        """A commit listener (see Writer.on_commit)."""
        self._committed.set()

    def stop(self) -> None:
        self._stopping = True
        self._committed.set()
        self._thread.join()

    def _work(self) -> None:
        event_log = SqliteEventLog(self._path)
        try:
            while self._committed.wait() and not self._stopping:
                # Cleared before the pause: a commit during it (or a stop) is not missed.
                self._committed.clear()
                time.sleep(self._interval_s)
                try:
                    event_log.checkpoint_passive()
                except StorageError as exc:
                    log("event_log_checkpoint_failed", reason=str(exc))
        finally:
            event_log.close()
