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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from bond.errors import StorageError
from bond.logs import log
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
        interval_s: float = 0.2,
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
                self._checkpoint(event_log)
        finally:
            event_log.close()

    def _checkpoint(self, event_log: SqliteEventLog) -> None:
        for _ in range(_CHASES):
            try:
                frames, copied = event_log.checkpoint_passive()
            except StorageError as exc:
                log("event_log_checkpoint_failed", reason=str(exc))
                return
            if frames < self._restart_frames:  # -1 too: another checkpoint was running
                return
            if frames - copied <= self._tail_frames:
                self._finish()
                return
