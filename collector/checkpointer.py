"""Copying the event log's WAL into its database, off the commit path, and keeping the WAL short.

SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages, which
a commit of batches does nearly every time; that commit, and every request waiting on it, then
also waits for the copy and an fsync of the database. Here the writer's connection never
checkpoints (`SqliteEventLog(checkpoints=False)`): a thread of the commit process does, on
its own connection, `interval_s` after a commit, with passive checkpoints that block no
writer. Between two checkpoints a page written by many commits is copied once.

But a passive checkpoint copies what the WAL held when it began, and under steady load there is
more by its end. The WAL only starts over from its first frame when a write transaction begins
with every frame copied, so it grew for as long as the load lasted, and every commit grew
dearer with it: each extended the file, and looked pages up in a longer index (a tenth of a
second of batches at a time made 40 MB of WAL a second; at 200 MB a commit cost twice the CPU).
So once the WAL is past `restart_frames`, checkpoints follow each other without the pause until
at most `tail_frames` are left uncopied, and `finish` asks the writer to copy those itself
between two of its commits: its next commit then starts the WAL over.

SQLite flushes the database file to disk only in the checkpoint that copies the WAL's last
frame, which under steady load is the writer's own: it then flushed every page copied since the
WAL last started over (up to 32 MB) while every request waited. Under 12 s of batches that was
a stall of 80-100 ms about once a second, for all connections at once: p99 111-113 ms, the
longest request 132-167 ms. So the checkpointer flushes the database file after each of its
checkpoints, and the writer's flush finds little left: p99 52-58 ms, the longest 68-85 ms.

A flush still slows the commit beside it, whose own fsync waits behind the database's pages on
their way to disk, by about as long as those pages take to write. With a checkpoint every 0.2 s
that was about 10 ms four times a second, and it made the batches' p99 in `bond bench ingest`
(19-23 ms against a median of 5-7 ms, on a day the collector took 115,000-125,000 events/s).
A checkpoint every 0.1 s flushes half as much at a time: p99 17-18 ms, and in three runs
alternating with 0.2 s the same rates (batches 115,000-117,000 against 116,000-121,000 events/s,
single events 0.77-0.81x against 0.77-0.79x the trivial endpoint). Every 0.05 s: p99 14-16 ms,
but batches 5-10% slower and single events too, as pages rewritten by the commits between two
checkpoints are copied and flushed more often.

On a full disk a checkpoint fails after every commit until there is room again: that is one
line when it starts and one when it ends (bond/outage.py), not one every tenth of a second.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bond.errors import StorageError
from bond.outage import Outage
from bond.storage.eventlog import SqliteEventLog

RESTART_FRAMES = 8192  # 32 MB of 4 KB pages
TAIL_FRAMES = 128  # what the writer copies itself: half a megabyte, a millisecond or two
_CHASES = 8  # checkpoints back to back at most, before pausing again


class Checkpointer:
    def __init__(
        self,
        path: Path,
        *,
        finish: Callable[[], None],
        interval_s: float = 0.1,
        restart_frames: int = RESTART_FRAMES,
        tail_frames: int = TAIL_FRAMES,
    ) -> None:
        self._path = path
        self._finish = finish
        self._interval_s = interval_s
        self._restart_frames = restart_frames
        self._tail_frames = tail_frames
        self._committed = threading.Event()
        self._stopping = False
        self._outage = Outage("event_log_checkpoint")
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
        with contextlib.ExitStack() as opened:
            event_log = SqliteEventLog(self._path)
            opened.callback(event_log.close)
            database = os.open(self._path, os.O_RDONLY)  # fdatasync needs no write access
            opened.callback(os.close, database)
            while self._committed.wait() and not self._stopping:
                # Cleared before the pause: a commit during it (or a stop) is not missed.
                self._committed.clear()
                time.sleep(self._interval_s)
                self._checkpoint(event_log, database)

    def _checkpoint(self, event_log: SqliteEventLog, database: int) -> None:
        for _ in range(_CHASES):
            try:
                frames, copied = event_log.checkpoint_passive()
                _flush(database)
            except (StorageError, OSError) as exc:
                self._outage.failed(str(exc))
                return
            if frames < 0:  # another checkpoint was running: this one did nothing
                return
            self._outage.ended()
            if frames < self._restart_frames:
                return
            if frames - copied <= self._tail_frames:
                self._finish()
                return


def _flush(fd: int) -> None:
    # macOS has no fdatasync; its fsync writes back all the same, which is what matters here.
    getattr(os, "fdatasync", os.fsync)(fd)
