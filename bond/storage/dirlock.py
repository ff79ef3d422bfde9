"""One `bond serve` and one `bond worker` per data directory: each holds a lock file there.

Two collectors on one event log fought over its write lock (under load some requests failed with
503 "database is locked"), and two workers would apply the same events. The lock is an advisory
`flock`, released by the kernel when its holder exits however it exits, so a kill -9 leaves no
stale lock to block a restart. The holder writes its pid into the file when the disk has room
for it, so that the process refused can say which one holds the directory.

`bond api` only reads and takes no lock: any number may run. The worker's lock is the file
`bond erase` and `bond alerts send` test (engine/privacy/lock.py) to know whether a worker runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bond.errors import StorageError


@dataclass(frozen=True)
class Role:
    """A kind of process that runs once per data directory."""

    name: str  # the lock file's stem, and the `app` of its log lines
    command: str  # how an operator starts it


COLLECTOR = Role("collector", "bond serve")
WORKER = Role("worker", "bond worker")


class DirectoryInUse(StorageError):
    """Another process of the same role holds the data directory."""

    def __init__(self, lock: DataDirLock, pid: int | None) -> None:
        self.role = lock.role
        self.path = lock.path
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "it"
        super().__init__(
            f"another {lock.role.command} is running on {lock.path.parent} ({holder} holds "
            f"{lock.path}); run one {lock.role.command} per data directory"
        )


class DataDirLock:
    def __init__(self, data_dir: Path, role: Role) -> None:
        self.role = role
        self.path = data_dir / f"{role.name}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        fd = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            if isinstance(exc, BlockingIOError):
                return False
            raise StorageError(f"cannot lock {self.path}: {exc}") from exc
        self._fd = fd
        # The pid only names the holder in another process's refusal. A full disk must not stop
        # this process from starting (it waits for room as it does once running), so the file
        # may stay empty, or keep a dead holder's pid, which holder() tells apart.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                # Emptied first: a pid left behind could name an unrelated process later.
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)

    def holder(self) -> int | None:
        """The pid written by the process holding the lock, if it is still alive.

        A holder killed with -9 leaves its pid in the file: a dead pid is none.
        """
        try:
            pid = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except PermissionError:
            return pid  # it does, as another user's
        except (OSError, OverflowError):
            return None
        return pid


@contextmanager
def holding(data_dir: Path, role: Role) -> Iterator[None]:
    """Hold `role`'s lock on `data_dir` for the block; DirectoryInUse when another process does."""
    lock = DataDirLock(data_dir, role)
    if not lock.acquire():
        raise DirectoryInUse(lock, lock.holder())
    try:
        yield
    finally:
        lock.release()
