"""`bond backup DEST`: a consistent copy of a data directory, taken while Bond runs on it.

Each database is copied with SQLite's online backup API in a single step: one read transaction
copies every page of one snapshot, and WAL readers do not hold up the collector's or the
worker's commits. In several steps, any commit from another connection between two steps makes
SQLite start the copy over, and under steady ingest it would never finish. `VACUUM INTO` reads
the same snapshot but rebuilds every table and index row by row: on a log of 1,000,000 events
(240 MB) 2.6-3.1 s and 1.0 s of CPU against 0.8-1.5 s and 0.6 s, on the two cores the collector
shares, and the WAL grows for as long as any reader holds its snapshot (no checkpoint can copy
past it).

state.db is copied before events.db. The worker only records an offset after reading those
events from the log, so the copy of state.db, taken first, names an offset the later copy of the
log holds; the worker on the restored copy applies what came in between. The other order could
take a state whose offset is past the copied log's end: the restored collector would hand out
those offsets again (its counter is in the log) and the worker would skip the events under them.

An erasure writes both files (the request and the person in state.db, the suppression list and
the events in events.db): one that starts between the two copies would leave the person in the
copied state without the request that erases them. The suppression list's version moves with
every such erasure, so the copy is taken again when it moved meanwhile.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import FrameType

import orjson

from bond.config import Config
from bond.demo import TOKEN_FILE
from bond.errors import BondError, StorageError
from bond.storage.dedup import LAST_SEQ
from bond.storage.sqlite import BUSY_TIMEOUT_MS
from engine.privacy.tables import has_table

# What a restored Bond needs, in the order they are copied (see above). Lock files, logs and
# the -wal and -shm files are left: each copy is a whole database in one file.
DATABASES = ("state.db", "events.db")
OTHER_FILES = (TOKEN_FILE,)
ATTEMPTS = 3
FLUSH_EVERY_S = 0.02
# A test-only fault point: after the first database is copied the process sends itself this
# signal (KILL, TERM), to show what an interrupted backup leaves.
FAULT_ENV = "BOND_FAULT_BACKUP_SIGNAL"
_PARTIAL = ".partial-"  # an unfinished copy: `.DEST.partial-PID-random`


def backup(config: Config, dest: Path) -> int:
    """Copy the data directory into `dest`, which must not exist or be empty; print a summary."""
    started = time.monotonic()
    data = config.data_dir.resolve()
    target = _destination(data, dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    removed = _remove_abandoned(target.parent)
    # Beside DEST, so the rename cannot cross file systems; mkdtemp makes it private (0700), as
    # the copy of state.db holds every person's key. The pid in its name says when it is
    # abandoned.
    partial = Path(
        tempfile.mkdtemp(prefix=f".{target.name}{_PARTIAL}{os.getpid()}-", dir=target.parent)
    )
    try:
        with _signals_interrupt():
            summary = _copy(data, partial)
            _fsync(partial)
            try:
                partial.rename(target)
            except OSError as exc:
                raise StorageError(f"cannot move the finished backup to {target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _fsync(target.parent)
    summary["backup"] = str(target)
    if removed:
        summary["removed_unfinished"] = removed
    summary["seconds"] = round(time.monotonic() - started, 3)
    print(orjson.dumps(summary).decode())
    return 0


def _remove_abandoned(parent: Path) -> list[str]:
    """Delete the unfinished copies that backups killed with -9 left in `parent`, and name them.

    Each holds every person's key in a hidden directory nobody would think to delete. One whose
    process still runs (another backup beside this one) is left, as is anything not ours.
    """
    removed = []
    for entry in parent.iterdir():
        name = entry.name
        if not name.startswith(".") or _PARTIAL not in name:
            continue
        pid = name.rpartition(_PARTIAL)[2].partition("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            if not entry.is_dir() or entry.is_symlink() or entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(name)
    return sorted(removed)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's process
    except (OSError, OverflowError):
        return False
    return True


def _destination(data: Path, dest: Path) -> Path:
    target = dest.resolve()
    if target.is_relative_to(data):
        raise StorageError(
            f"{dest} is inside the data directory {data}: a backup there is lost with the "
            "directory; choose a path outside it"
        )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StorageError(
            f"{dest} already exists and is not an empty directory: choose a new path (a backup "
            "never writes over anything)"
        )
    return target


def _copy(data: Path, into: Path) -> dict[str, object]:
    for _ in range(ATTEMPTS):
        before = _suppression_version(data / "events.db")
        files = []
        for name in DATABASES:
            if (data / name).exists():
                _copy_database(data / name, into / name)
                files.append(name)
                _fault_point()
        if _suppression_version(into / "events.db") == before:
            break
        for name in files:
            (into / name).unlink()
    else:
        raise StorageError(
            f"erasures ran during each of {ATTEMPTS} attempts to copy {data}: try again once "
            "they are done"
        )
    for name in OTHER_FILES:
        if (data / name).is_file():
            shutil.copy2(data / name, into / name)
            _fsync(into / name)
            files.append(name)
    return {
        "files": files,
        "bytes": sum((into / name).stat().st_size for name in files),
        **_contents(into),
    }


def _open(path: Path) -> sqlite3.Connection:
    """An existing database, never created: a file that vanished is an error, not a new one."""
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _copy_database(source: Path, target: Path) -> None:
    try:
        with closing(_open(source)) as src, closing(sqlite3.connect(target)) as dst:
            # The copy reaches the disk in small flushes as it is written (below), and whole
            # before the rename; an interrupted one is never renamed, so SQLite need not sync.
            dst.execute("PRAGMA synchronous = OFF")
            with _flushed_while_written(target):
                src.backup(dst)  # pages=-1: every page in one step, from one snapshot
            problems = [row[0] for row in dst.execute("PRAGMA quick_check")]
    except sqlite3.Error as exc:
        raise StorageError(f"cannot copy {source}: {exc}") from exc
    if problems != ["ok"]:
        raise StorageError(f"the copy of {source.name} fails its check: {'; '.join(problems)}")
    _fsync(target)


def _suppression_version(path: Path) -> int | None:
    if not path.exists():
        return None
    try:
        with closing(_open(path)) as conn:
            if not has_table(conn, "suppression_state"):
                return 0
            row = conn.execute("SELECT version FROM suppression_state").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    return int(row[0]) if row else 0


def _contents(into: Path) -> dict[str, object]:
    """The events in the copied log and the worker's offset in the copied state, which must not
    be past the log's counter (see above)."""
    events = head = offset = 0
    try:
        if (into / "events.db").exists():
            with closing(_open(into / "events.db")) as conn:
                events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
                head = int(conn.execute(LAST_SEQ).fetchone()[0])
        if (into / "state.db").exists():
            with closing(_open(into / "state.db")) as conn:
                if has_table(conn, "engine_offset"):
                    row = conn.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
                    offset = int(row[0]) if row else 0
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the copy in {into}: {exc}") from exc
    if offset > head:
        raise StorageError(
            f"the copied state.db has applied up to offset {offset}, past the copied log's "
            f"{head}: was events.db replaced during the backup?"
        )
    return {"events": events, "log_head": head, "worker_offset": offset}


@contextmanager
def _flushed_while_written(path: Path) -> Iterator[None]:
    """Flush `path` to disk every FLUSH_EVERY_S while the block writes it.

    The collector answers only after its commit is on disk, and its flush waits behind whatever
    else the disk is writing. A whole copy flushed at once (SQLite's own sync at the end of the
    backup step) held every request for 0.7-1.0 s on a 240 MB log; flushed as it is written,
    each of the collector's flushes waits behind a megabyte or two.
    """
    stop = threading.Event()
    fd = os.open(path, os.O_RDONLY)

    def flush() -> None:
        while not stop.wait(FLUSH_EVERY_S):
            os.fdatasync(fd)

    flusher = threading.Thread(target=flush, name="bond-backup-flush", daemon=True)
    flusher.start()
    try:
        yield
    finally:
        stop.set()
        flusher.join()
        os.close(fd)


def _fsync(path: Path) -> None:
    """The copy's bytes, or a directory's entries, on disk before the backup is said done."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM ends the backup as Ctrl-C does, through the clean-up of the partial copy (it
    comes once the database being copied is done: the copy is one step of SQLite's)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise BondError(f"stopped by {signal.Signals(signum).name}: no backup was written")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fault_point() -> None:
    name = os.environ.get(FAULT_ENV)
    if name:
        os.kill(os.getpid(), signal.Signals[f"SIG{name}"])
