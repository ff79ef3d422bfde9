"""The commit process: groups from a pipe committed to real SQLite files, answered in order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from bond.storage.eventlog import NewEvent, SqliteEventLog
from collector.commit_process import Committer, serve
from collector.commit_protocol import READY, Ack, FrameReader, decode_ack, group_frame


def event(n: int) -> NewEvent:
    return NewEvent("web", f"m-{n}", "page", f"a-{n}", None, None, 1, 2, None, None, b"{}")


def answers(fd: int) -> list[Ack]:
    reader, acks = FrameReader(), []
    while data := os.read(fd, 65536):
        acks += [decode_ack(payload) for payload in reader.feed(data)]
    os.close(fd)
    return acks


def run_serve(db: Path, sent: bytes, *, read_answers: bool = True) -> list[Ack]:
    """Serve one connection whose whole input is `sent`, then the end of input."""
    frames_in, frames_out = os.pipe()
    acks_in, acks_out = os.pipe()
    if not read_answers:
        os.close(acks_in)
    committer = Committer(SqliteEventLog(db, checkpoints=False))
    server = threading.Thread(target=serve, args=(committer, frames_in, acks_out))
    server.start()
    os.write(frames_out, sent)
    os.close(frames_out)
    server.join(timeout=30)
    os.close(acks_out)
    os.close(frames_in)
    committer.log.close()
    return answers(acks_in) if read_answers else []


def start(db: Path, input_fd: int, output_fd: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "collector.commit_process", "--events-db", str(db)),
            *("--input", str(input_fd), "--output", str(output_fd)),
        ],
        pass_fds=(input_fd, output_fd),
    )


def stored(db: Path) -> list[str]:
    return [e.message_id for e in SqliteEventLog(db).read_after(0, 100)]


def test_frames_that_arrived_together_share_one_commit_and_one_answer(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    sent = group_frame([event(1), event(2)], []) + group_frame([event(3)], [])
    sent += group_frame([event(1)], [])  # sent again: a duplicate
    (ack,) = run_serve(db, sent)
    assert (ack.frames, ack.events, ack.new, ack.error) == (3, 4, 3, None)
    assert stored(db) == ["m-1", "m-2", "m-3"]


def test_whole_frames_are_committed_when_no_one_reads_the_answers(tmp_path: Path) -> None:
    # The collector died: what it sent is committed all the same, and its clients' retries
    # are then duplicates. A frame cut off by the end was never acknowledged: it is dropped.
    db = tmp_path / "events.db"
    cut_off = group_frame([event(2)], [])[:-3]
    run_serve(db, group_frame([event(1)], []) + cut_off, read_answers=False)
    assert stored(db) == ["m-1"]


def test_the_process_says_it_is_ready_then_stops_at_the_end_of_its_input(tmp_path: Path) -> None:
    frames_in, frames_out = os.pipe()
    acks_in, acks_out = os.pipe()
    db = tmp_path / "events.db"
    process = start(db, frames_in, acks_out)
    os.close(frames_in)
    os.close(acks_out)
    os.write(frames_out, group_frame([event(1)], []))
    os.close(frames_out)
    assert process.wait(timeout=30) == 0
    ready, ack = answers(acks_in)
    assert ready == READY
    assert (ack.frames, ack.new) == (1, 1)
    assert stored(db) == ["m-1"]


def test_a_log_it_cannot_open_is_its_first_answer(tmp_path: Path) -> None:
    frames_in, frames_out = os.pipe()
    acks_in, acks_out = os.pipe()
    process = start(tmp_path, frames_in, acks_out)  # a directory where the file should be
    os.close(frames_in)
    os.close(acks_out)
    assert process.wait(timeout=30) == 1
    os.close(frames_out)
    (ack,) = answers(acks_in)
    assert ack.frames == 0
    assert ack.error is not None and "cannot open database" in ack.error
