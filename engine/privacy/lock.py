"""The data directory's worker lock: one process applies events and erasures at a time.

`bond worker` holds it while it runs. `bond erase` takes it to carry out an erasure itself when
no worker is running, and otherwise leaves the request to the worker that holds it. The lock is
an advisory `flock`, released by the kernel when its holder exits however it exits.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bond.errors import StorageError

NAME = "worker.lock"


class WorkerLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self.path}: {exc}") from exc
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
