"""The single writer: group commits to the event log, acknowledging each request after commit.

Requests hand their rows to one writer task and wait. While a transaction is being committed on
the writer thread, new requests pile up and all go into the next transaction together, so the
cost of a durable commit is shared by everything that arrived during the previous one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bond.errors import Overloaded, StorageError, Unavailable
from bond.logs import log
from bond.storage.eventlog import EventLog, NewEvent, RejectedEvent

# Called after every commit with (events, duplicates among them, rejected, seconds).
CommitListener = Callable[[int, int, int, float], None]


@dataclass
class _Pending:
    events: Sequence[NewEvent]
    rejected: Sequence[RejectedEvent]
    done: asyncio.Future[None]


class Writer:
    def __init__(self, log_: EventLog, *, queue_max_events: int) -> None:
        self._log = log_
        self._queue_max = queue_max_events
        self._pending: list[_Pending] = []
        self._pending_events = 0
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bond-writer")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.on_commit: list[CommitListener] = []
        self.healthy = True
        self.last_error: str | None = None

    @property
    def queue_depth(self) -> int:
        return self._pending_events

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bond-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._thread.shutdown(wait=True)

    async def submit(self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> None:
        """Return once the rows are committed; raise Overloaded or Unavailable otherwise."""
        if self._closing:
            raise Unavailable("the collector is shutting down; retry shortly")
        if self._pending_events + len(events) > self._queue_max:
            raise Overloaded(
                f"the write queue holds {self._pending_events} events; retry after a pause",
                retry_after_s=1,
            )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(events, rejected, done))
        self._pending_events += len(events)
        self._wake.set()
        await done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            group, self._pending = self._pending, []
            events = [e for p in group for e in p.events]
            rejected = [r for p in group for r in p.rejected]
            started = time.perf_counter()
            try:
                inserted = await loop.run_in_executor(
                    self._thread, self._log.append, events, rejected
                )
            except StorageError as exc:
                self._fail(group, str(exc))
            else:
                self.healthy, self.last_error = True, None
                elapsed = time.perf_counter() - started
                for listener in self.on_commit:
                    listener(len(events), len(events) - inserted, len(rejected), elapsed)
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_result(None)
            finally:
                self._pending_events -= len(events)
            if self._pending:
                self._wake.set()

    def _fail(self, group: list[_Pending], reason: str) -> None:
        self.healthy, self.last_error = False, reason
        log("event_log_write_failed", reason=reason, requests=len(group))
        for pending in group:
            if not pending.done.done():
                pending.done.set_exception(
                    Unavailable("the event log could not be written; retry later")
                )
