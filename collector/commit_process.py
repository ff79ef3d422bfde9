"""The commit process: the event log's one writer, fed by the collector over a pipe.

It reads every frame that has arrived, commits them as one group, answers with one Ack, and
starts over, so the frames that arrive during a commit share the next one. After each commit
the checkpointer may ask for work between two commits (collector/checkpointer.py).

Why a process and not a thread of the collector: the collector's event loop is the ceiling of
ingest, and a writer thread in its process takes the GIL from it a few times per commit (to
start one, after each SQLite step, to wake the loop), each time after a forced switch. Moved
here, the same commits cost the loop an encoded frame per request and a read per commit:
measured beside each other on one machine, single-event requests went from 0.62-0.68x of
the trivial endpoint's rate to 0.85x.

It stops when its input ends, once it has committed every whole frame it read: that is how
the collector stops it, and also what happens when the collector dies. It ignores SIGINT and
SIGTERM, which a terminal or a service manager sends to the whole process group, so that it
is never stopped between the collector's last request and its commit.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import queue
import select
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bond.errors import StorageError
from bond.logs import log
from bond.storage.eventlog import SqliteEventLog
from collector.checkpointer import Checkpointer
from collector.commit_protocol import READY, Ack, FrameReader, Group, ack_frame, decode_group

_READ_BYTES = 1 << 20
_GROUP_BYTES = 8 << 20  # what one commit reads at most before committing it


class Committer:
    """Commits groups of frames to the log; runs tasks between two commits."""

    def __init__(self, event_log: SqliteEventLog) -> None:
        self.log = event_log
        self.on_commit: list[Callable[[], None]] = []
        self._between: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()

    def commit(self, groups: Sequence[Group]) -> Ack:
        """One transaction for all of `groups`; never raises for a failed write, answers it."""
        events = list(itertools.chain.from_iterable(group.events for group in groups))
        rejected = list(itertools.chain.from_iterable(group.rejected for group in groups))
        ack = Ack(len(groups), len(events), 0, len(rejected), 0.0)
        started = time.perf_counter()
        try:
            new = self.log.append(events, rejected)
        except StorageError as exc:
            return ack._replace(error=str(exc))
        except Exception as exc:  # a bug must fail its requests, not leave them waiting
            return ack._replace(error=f"unexpected error: {exc!r}")
        ack = ack._replace(new=new, seconds=time.perf_counter() - started)
        for listener in self.on_commit:
            listener()
        return ack

    def between_commits(self, task: Callable[[], object]) -> None:
        """Run `task` after the next commit has been answered (callable from any thread).

        For work that must not overlap a commit, such as finishing a checkpoint on the
        writer's own connection.
        """
        self._between.put(task)

    def run_between(self) -> None:
        while not self._between.empty():
            task = self._between.get()
            try:
                task()
            except Exception as exc:  # the writer must outlive a failed task
                log("writer_task_failed", reason=repr(exc))


def serve(committer: Committer, input_fd: int, output_fd: int) -> None:
    """Commit what arrives on `input_fd` and answer on `output_fd` until the input ends."""
    reader = FrameReader()
    # Read into one buffer kept for good: os.read allocates a buffer of the size asked for on
    # every call, and one of a megabyte is mapped and unmapped each time (30 us a read here).
    into = memoryview(bytearray(_READ_BYTES))
    answering = True
    while (payloads := _read_arrived(input_fd, into, reader)) is not None:
        if not payloads:
            continue
        ack = committer.commit([decode_group(payload) for payload in payloads])
        if answering:
            try:
                _write_all(output_fd, ack_frame(ack))
            except BrokenPipeError:
                answering = False  # the collector is gone: commit what it sent, then stop
        committer.run_between()


def _read_arrived(fd: int, into: memoryview, reader: FrameReader) -> list[bytes] | None:
    """Wait for input, then take the frames of all that has arrived (up to a bound); None once
    the input ended."""
    size = os.readv(fd, [into])
    if not size:
        return None
    payloads, total = reader.feed(into[:size]), size
    while total < _GROUP_BYTES and select.select([fd], [], [], 0)[0]:
        size = os.readv(fd, [into])
        if not size:
            break  # the end: the next read says so, after this group is committed
        payloads += reader.feed(into[:size])
        total += size
    return payloads


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.commit_process")
    parser.add_argument("--events-db", type=Path, required=True)
    parser.add_argument("--input", type=int, required=True, help="file descriptor of frames")
    parser.add_argument("--output", type=int, required=True, help="file descriptor of acks")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        event_log = SqliteEventLog(args.events_db, checkpoints=False)
        # Bounded (see bond/storage/dedup.py), and done while the collector starts rather
        # than in its first request's commit.
        event_log.prepare_appends()
    except StorageError as exc:
        _write_all(args.output, ack_frame(READY._replace(error=str(exc))))
        return 1
    # Rows made per commit hold no reference cycles; the start-up objects never go.
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    committer = Committer(event_log)
    checkpointer = Checkpointer(
        args.events_db, finish=lambda: committer.between_commits(event_log.checkpoint_passive)
    )
    committer.on_commit.append(checkpointer.committed)
    checkpointer.start()
    try:
        _write_all(args.output, ack_frame(READY))
        serve(committer, args.input, args.output)
    finally:
        checkpointer.stop()
        event_log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
