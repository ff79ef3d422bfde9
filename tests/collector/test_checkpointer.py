"""The WAL starts over under steady commits, checkpointed off the commit path then by the writer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bond.storage.eventlog import NewEvent, SqliteEventLog
from collector.checkpointer import Checkpointer
from collector.commit_process import Committer
from collector.commit_protocol import Group

PAGE = 4096
RESTART_FRAMES = 64


def commit_steadily(db: Path, finish: Callable[[Committer], None]) -> tuple[int, int]:
    """Commit groups back to back, as the commit process does under steady load.

    Returns the bytes committed and the largest the WAL file was seen.
    """
    body = b'{"pad":"' + b"x" * 2000 + b'"}'
    committer = Committer(SqliteEventLog(db, checkpoints=False))
    checkpointer = Checkpointer(
        db,
        finish=lambda: finish(committer),
        interval_s=0.005,
        restart_frames=RESTART_FRAMES,
        tail_frames=8,
    )
    committer.on_commit.append(checkpointer.committed)
    checkpointer.start()
    wal, largest = db.with_name(db.name + "-wal"), 0
    try:
        for n in range(800):
            events = [
                NewEvent("web", f"{n}-{i}", "track", "a", None, "E", 1, 2, None, None, body)
                for i in range(10)
            ]
            assert committer.commit([Group(events, [])]).error is None
            committer.run_between()
            largest = max(largest, wal.stat().st_size)
    finally:
        checkpointer.stop()
        committer.log.close()
    return 800 * 10 * len(body), largest


def test_the_wal_starts_over_while_commits_keep_coming(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    asked: list[bool] = []

    def finish(committer: Committer) -> None:
        asked.append(True)
        committer.between_commits(committer.log.checkpoint_passive)

    committed, wal = commit_steadily(db, finish)
    assert asked, "the checkpointer asked the writer to finish"
    # Without a restart the WAL holds more than everything committed (16 MB here, in 34 MB).
    assert wal < committed / 2
    assert len(SqliteEventLog(db).read_after(0, 10_000)) == 8000


def test_the_database_file_is_flushed_after_each_of_the_checkpointers_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite flushes the database file only in the checkpoint that copies the WAL's last frame,
    # the writer's own under steady load, which then waited for every page copied since the
    # WAL last started over (80-100 ms stalls of every commit, about once a second of batches).
    db = tmp_path / "events.db"
    flushed: list[int] = []
    flush = os.fdatasync

    def recording(fd: int) -> None:
        flushed.append(os.fstat(fd).st_ino)
        flush(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    commit_steadily(
        db, lambda committer: committer.between_commits(committer.log.checkpoint_passive)
    )
    assert len(flushed) >= 2
    assert set(flushed) == {db.stat().st_ino}
