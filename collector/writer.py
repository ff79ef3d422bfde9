"""The collector's side of the event log's writer: requests wait for the commit of their rows.

The commits themselves happen in the commit process (collector/commit_process.py, which says
why it is a process). A request's rows go to it as one frame, and the frames of one turn of the
event loop leave in one write. Each answer covers the oldest frames still waiting, in the
order they were sent, so a request is answered 2xx only after its rows were committed, and
the requests that arrived during one commit share the next.

If the commit process exits, the requests it had not answered fail with 503: their clients
send them again, and whatever it had committed of them is then stored once, as duplicates are.
A new one starts after a pause that grows while they keep failing.

A commit that fails (a full disk) fails its requests with 503, Retry-After and the reason, and
every request after tries again: the first commit that succeeds once there is room ends it,
with no restart. A full disk still takes the health check's one page now and then (into the
room a failed commit's partial write left), so a probe alone says the log is writable again
only once no commit has failed for HEALTH_HOLD_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from bond.errors import Overloaded, Unavailable
from bond.logs import log
from bond.outage import Outage
from bond.storage.eventlog import NewEvent, RejectedEvent
from collector.commit_protocol import Ack, FrameReader, decode_ack, group_frame

# Called after every commit with (events, duplicates among them, rejected, seconds).
CommitListener = Callable[[int, int, int, float], None]

# Room in the pipe for the frames of the requests that arrive during one commit, so that the
# next commit takes them all: Linux's default of 64 KB holds one 100-event batch, and the
# commit process then committed each batch on its own, paying a commit's fixed costs (a
# statement, an fsync) per request. Linux's limit for an unprivileged process is 1 MB.
PIPE_BYTES = 1 << 20
RESTART_S = (0.1, 10.0)  # the first pause before a new commit process, and the longest
STOP_TIMEOUT_S = 30.0
HEALTH_HOLD_S = 2.0  # after a failed commit, how long a probe's success does not count
# What a 503 asks clients (the browser SDK honours it) to wait: a full disk is not freed in a
# second; a new commit process is ready in a fraction of one.
FAILED_RETRY_AFTER_S = 10
RESTARTING_RETRY_AFTER_S = 1


class _Waiting(NamedTuple):
    done: asyncio.Future[None]
    events: int


class _Process(NamedTuple):
    popen: subprocess.Popen[bytes]
    frames: asyncio.WriteTransport
    acks: asyncio.ReadTransport


class Writer:
    def __init__(self, events_db: Path, *, queue_max_events: int) -> None:
        self._events_db = events_db
        self._queue_max = queue_max_events
        self._queued_events = 0  # waiting for a commit or in one
        self._waiting: deque[_Waiting] = deque()  # one per frame sent or about to be
        self._outgoing: list[bytes] = []  # frames of this turn of the loop
        self._process: _Process | None = None
        self._restart_s = RESTART_S[0]
        self._restarting: asyncio.Task[None] | None = None
        self._exited_last: subprocess.Popen[bytes] | None = None  # to reap, if a restart did not
        self._closing = False
        self._drained: asyncio.Event | None = None
        self.on_commit: list[CommitListener] = []
        self.on_exit: list[Callable[[], None]] = []  # the commit process ended unasked
        self.on_failure: list[Callable[[], None]] = []  # a commit failed
        self.healthy = True
        self.last_error: str | None = None
        self._failed_at = float("-inf")  # when a commit last failed (monotonic)
        self._outage = Outage("event_log_write")
        self._not_opened = Outage("commit_process_open")  # restarts that could not open the log

    @property
    def queue_depth(self) -> int:
        return self._queued_events

    async def start(self) -> None:
        """Start the commit process; requests may be submitted at once."""
        await self._spawn()

    async def stop(self) -> None:
        """Wait for what is queued to be committed, then stop the commit process."""
        self._closing = True
        self._send()
        if self._waiting:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log("writer_stop_timed_out", requests=len(self._waiting))
        if self._restarting is not None:
            self._restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restarting
        if self._exited_last is not None:
            await asyncio.to_thread(self._exited_last.wait)
        process, self._process = self._process, None
        if process is not None:
            process.frames.close()  # the end of its input: it commits what it read and exits
            await asyncio.to_thread(process.popen.wait)
            process.acks.close()

    def submit(
        self, events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]
    ) -> asyncio.Future[None]:
        """A future done once the rows are committed; raises Overloaded or Unavailable at once.

        A plain function handing back the future, not a coroutine awaiting it: one coroutine
        fewer to create and resume on every request.
        """
        if self._closing:
            raise Unavailable(
                "the collector is shutting down; retry shortly",
                retry_after_s=RESTARTING_RETRY_AFTER_S,
            )
        if self._process is None:
            raise Unavailable(
                "the event log's writer is restarting; retry shortly",
                retry_after_s=RESTARTING_RETRY_AFTER_S,
            )
        if self._queued_events + len(events) > self._queue_max:
            raise Overloaded(
                f"the write queue holds {self._queued_events} events; retry after a pause",
                retry_after_s=1,
            )
        done = asyncio.get_running_loop().create_future()
        if not self._outgoing:
            done.get_loop().call_soon(self._send)
        self._outgoing.append(group_frame(events, rejected))
        self._waiting.append(_Waiting(done, len(events)))
        self._queued_events += len(events)
        return done

    def _send(self) -> None:
        frames, self._outgoing = self._outgoing, []
        if frames and self._process is not None:
            self._process.frames.writelines(frames)

    async def _spawn(self) -> None:
        frames_in, frames_out = os.pipe()
        acks_in, acks_out = os.pipe()
        _widen(frames_out)
        try:
            popen = subprocess.Popen(
                # -P: the collector's own packages, whatever directory it was started in.
                [
                    *(sys.executable, "-P", "-m", "collector.commit_process"),
                    *("--events-db", str(self._events_db)),
                    *("--input", str(frames_in), "--output", str(acks_out)),
                ],
                pass_fds=(frames_in, acks_out),
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            for fd in (frames_out, acks_in):
                os.close(fd)
            raise
        finally:
            os.close(frames_in)  # the child's ends: its copies are all it needs
            os.close(acks_out)
        loop = asyncio.get_running_loop()
        frames_pipe = os.fdopen(frames_out, "wb", buffering=0)
        acks_pipe = os.fdopen(acks_in, "rb", buffering=0)
        try:
            frames, _ = await loop.connect_write_pipe(asyncio.Protocol, frames_pipe)
            acks, _ = await loop.connect_read_pipe(lambda: _AckReader(self, popen), acks_pipe)
        except BaseException:
            frames_pipe.close()  # the end of its input: it stops by itself
            acks_pipe.close()
            await asyncio.shield(asyncio.to_thread(popen.wait))
            raise
        self._process = _Process(popen, frames, acks)

    def _ready(self) -> None:
        self._restart_s = RESTART_S[0]
        self._not_opened.ended()

    def _committed(self, ack: Ack) -> None:
        refused = None
        if ack.error is not None:
            refused = f"{ack.error}; nothing of this request was stored: retry later"
        for _ in range(ack.frames):
            done, events = self._waiting.popleft()
            self._queued_events -= events
            if done.done():  # cancelled: a health check that stopped waiting
                continue
            if refused is None:
                done.set_result(None)
            else:
                done.set_exception(Unavailable(refused, retry_after_s=FAILED_RETRY_AFTER_S))
        if ack.error is not None:
            self._unhealthy(ack.error)
            self._failed_at = time.monotonic()
            self._outage.failed(ack.error, requests=ack.frames)
            for failed in self.on_failure:
                failed()
        else:
            rows = ack.events or ack.rejected
            if rows or time.monotonic() - self._failed_at >= HEALTH_HOLD_S:
                self.healthy, self.last_error = True, None
                self._outage.ended()
            for listener in self.on_commit:
                listener(ack.events, ack.events - ack.new, ack.rejected, ack.seconds)
        self._check_drained()

    def _exited(self, popen: subprocess.Popen[bytes], open_error: str | None) -> None:
        """The commit process ended its answers: planned at a stop, a failure otherwise."""
        if self._process is None or self._process.popen is not popen:
            return  # stopped on purpose
        process, self._process = self._process, None
        process.frames.close()
        self._exited_last = popen
        for listener in self.on_exit:
            listener()
        reason = "the event log's writer stopped; retry shortly"
        self._unhealthy(open_error or reason)
        self._outgoing.clear()
        while self._waiting:
            done, events = self._waiting.popleft()
            self._queued_events -= events
            if not done.done():
                done.set_exception(Unavailable(reason, retry_after_s=RESTARTING_RETRY_AFTER_S))
        self._check_drained()
        if not self._closing:
            self._restarting = asyncio.get_running_loop().create_task(
                self._restart(popen, open_error)
            )

    async def _restart(self, popen: subprocess.Popen[bytes], open_error: str | None) -> None:
        code = await asyncio.to_thread(popen.wait)
        self._unhealthy(open_error or f"the event log's writer {_ended(code)}")
        if open_error is None:
            log("commit_process_exited", code=code, reason=self.last_error)
        else:  # the same refusal at every restart (a full disk): a line when it starts and ends
            self._not_opened.failed(open_error, code=code)
        while True:
            delay, self._restart_s = self._restart_s, min(self._restart_s * 2, RESTART_S[1])
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except OSError as exc:
                self._unhealthy(f"cannot start the event log's writer: {exc}")
                log("commit_process_not_started", reason=self.last_error)
                continue
            self._restarting = None
            return

    def _unhealthy(self, reason: str) -> None:
        self.healthy, self.last_error = False, reason

    def _check_drained(self) -> None:
        if self._drained is not None and not self._waiting:
            self._drained.set()


def _widen(pipe: int) -> None:
    """Give the pipe PIPE_BYTES of room where the system allows it (Linux), or what it has."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if resize is not None:
        with contextlib.suppress(OSError):  # a lower limit set by the administrator
            fcntl.fcntl(pipe, resize, PIPE_BYTES)


def _ended(code: int) -> str:
    if code >= 0:
        return f"exited with {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:  # a real-time signal has no name of its own
        return f"was killed by signal {-code}"


class _AckReader(asyncio.Protocol):
    """The commit process's answers: the first says whether the log opened, then one a commit."""

    def __init__(self, writer: Writer, popen: subprocess.Popen[bytes]) -> None:
        self._writer = writer
        self._popen = popen
        self._frames = FrameReader()
        self._opened = False
        self._open_error: str | None = None

    def data_received(self, data: bytes) -> None:
        for payload in self._frames.feed(data):
            ack = decode_ack(payload)
            if self._opened:
                self._writer._committed(ack)
            elif ack.error is not None:
                self._open_error = f"the event log cannot be opened: {ack.error}"
            else:
                self._opened = True
                self._writer._ready()

    def connection_lost(self, exc: Exception | None) -> None:
        self._writer._exited(self._popen, self._open_error)
