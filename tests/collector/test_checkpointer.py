"""The WAL starts over under steady commits, checkpointed off the commit path then by the writer."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bond.storage.eventlog import NewEvent, SqliteEventLog
from collector.checkpointer import Checkpointer
from collector.commit_process import Committer
from collector.commit_protocol import READY, Ack, FrameReader, Group, decode_ack, group_frame
from conftest import wait_until

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


def test_checkpoints_a_full_disk_refuses_are_one_line_and_so_is_their_end(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    body = b'{"pad":"' + b"x" * 1000 + b'"}'

    def group(name: str, count: int) -> bytes:
        return group_frame(
            [
                NewEvent("web", f"{name}-{i}", "track", "a", None, "E", 1, 2, None, None, body)
                for i in range(count)
            ],
            [],
        )

    frames_in, frames_out = os.pipe()
    acks_in, acks_out = os.pipe()
    stderr = tmp_path / "commit-process.log"
    with stderr.open("wb") as log_file:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "collector.commit_process", "--events-db", str(db)),
                *("--input", str(frames_in), "--output", str(acks_out)),
            ],
            pass_fds=(frames_in, acks_out),
            stderr=log_file,
        )
    os.close(frames_in)
    os.close(acks_out)
    reader = FrameReader()

    def answer() -> Ack:
        while not (payloads := reader.feed(os.read(acks_in, 65536))):
            pass
        (ack,) = [decode_ack(payload) for payload in payloads]
        return ack

    def commit(frame: bytes) -> Ack:
        os.write(frames_out, frame)
        return answer()

    try:
        assert answer() == READY
        assert commit(group("first", 600)).error is None
        with sqlite3.connect(db) as conn:  # all of it in the database, the WAL emptied
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        # The database may not grow past its size now, the WAL (starting over) may: commits
        # succeed, and every checkpoint after them fails, as on a full disk.
        full = db.stat().st_size
        soft, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (full, hard))
        for n in range(4):
            assert commit(group(f"full{n}", 50)).error is None
            time.sleep(0.3)  # the checkpointer's turn, 0.1 s after a commit
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (soft, hard))
        assert commit(group("room", 50)).error is None
        wait_until(lambda: db.stat().st_size > full, what="a checkpoint with room")
    finally:
        os.close(frames_out)
        process.wait(timeout=30)
        os.close(acks_in)
    lines = [orjson.loads(line) for line in stderr.read_text().splitlines()]
    [failed] = [line for line in lines if line["event"] == "event_log_checkpoint_failed"]
    assert "disk I/O error" in failed["reason"]
    [recovered] = [line for line in lines if line["event"] == "event_log_checkpoint_recovered"]
    assert recovered["failures"] >= 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 850
