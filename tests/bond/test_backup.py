"""`bond backup` of a data directory that a real collector and worker keep writing, restored by
pointing real processes at the copy; its refusals; and what an interrupted backup leaves."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bond.backup import FAULT_ENV
from bond.bench.history import fill
from bond.config import Config
from conftest import (
    ROOT,
    WRITE_KEY,
    Collector,
    ReadApi,
    Worker,
    start_together,
    stop_together,
    wait_until,
)
from engine.worker import open_state
from tests.engine.privacy.privacy_support import run_cli

PEOPLE = 12


def run_backup(
    data_dir: Path, dest: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(data_dir, "backup", str(dest), env=env)


def message(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "messageId": f"m-{uuid.uuid4().hex}", **fields}


def visit(n: int) -> list[dict[str, Any]]:
    """Three anonymous page views of a browser, then its identify."""
    browser = f"browser-{n}-{uuid.uuid4().hex[:8]}"
    pages = [message("page", anonymousId=browser, name=f"Page {i}") for i in range(3)]
    traits = {"email": f"person{n}@example.com"}
    return [*pages, message("identify", anonymousId=browser, userId=f"user-{n}", traits=traits)]


def send(collector: Collector, batch: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{collector.url}/v1/batch",
        content=orjson.dumps({"batch": batch, "writeKey": WRITE_KEY}),
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def rows(database: Path, sql: str) -> list[Any]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute(sql)]


def head(data_dir: Path) -> int:
    return int(rows(data_dir / "events.db", "SELECT coalesce(max(seq), 0) FROM events")[0])


def applied(data_dir: Path) -> int:
    offsets = rows(data_dir / "state.db", "SELECT seq FROM engine_offset")
    return int(offsets[0]) if offsets else 0


def test_a_backup_taken_under_ingest_restores_into_a_working_bond(
    data_dir: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backups" / "monday"
    collector, worker = Collector(data_dir), Worker(data_dir)
    start_together(collector, worker)
    sent: list[dict[str, Any]] = []
    stop = threading.Event()

    def page_views_meanwhile() -> None:
        while not stop.is_set():
            batch = [message("page", anonymousId=f"passer-{uuid.uuid4().hex[:8]}")]
            send(collector, batch)
            sent.extend(batch)

    def between_the_copies() -> None:
        """A person the copied state.db does not hold, applied before events.db is copied."""
        batch = visit(PEOPLE)
        send(collector, batch)
        sent.extend(batch)
        query = f"SELECT seq FROM events WHERE message_id = '{batch[-1]['messageId']}'"
        [seq] = rows(data_dir / "events.db", query)
        wait_until(lambda: applied(data_dir) >= seq, timeout=30, what="the worker")

    try:
        for n in range(PEOPLE):
            batch = visit(n)
            send(collector, batch)
            sent.extend(batch)
        before_backup = {m["messageId"] for m in sent}
        wait_until(lambda: applied(data_dir) >= head(data_dir), timeout=30, what="the worker")
        meanwhile = threading.Thread(target=page_views_meanwhile)
        meanwhile.start()
        try:
            wait_until(lambda: len(sent) > len(before_backup), what="ingest to go on")
            result = paused_backup(data_dir, dest, between_the_copies)
        finally:
            stop.set()
            meanwhile.join()
    finally:
        stop_together(worker, collector)

    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    # Whole databases only: no lock files, no logs of the processes, no -wal or -shm.
    assert sorted(summary["files"]) == ["events.db", "state.db"]
    assert sorted(p.name for p in dest.iterdir()) == ["events.db", "state.db"]
    assert [p.name for p in dest.parent.iterdir()] == ["monday"]
    assert summary["bytes"] == sum(p.stat().st_size for p in dest.iterdir())
    copied = set(rows(dest / "events.db", "SELECT message_id FROM events"))
    assert before_backup <= copied
    assert summary["events"] == len(copied)
    assert summary["log_head"] == head(dest)
    assert summary["worker_offset"] == applied(dest) <= summary["log_head"]

    collector, worker, api = Collector(dest), Worker(dest), ReadApi(dest)
    start_together(collector, worker, api)
    try:

        def offset() -> int:
            return int(api.get("/status").json()["offset"])

        wait_until(lambda: offset() >= summary["log_head"], timeout=30, what="the restored worker")
        for n in range(PEOPLE + 1):
            person = api.get("/persons", email=f"person{n}@example.com")
            assert person.status_code == 200, person.text
            assert person.json()["user_ids"] == [f"user-{n}"]
            timeline = api.get(f"/persons/{person.json()['id']}/timeline").json()["events"]
            assert len(timeline) == 4  # the anonymous page views stitched to the person

        # New events take the offsets after the copy's log, and the worker applies them (it
        # would skip them if the copied state had applied offsets past that log's end).
        send(collector, visit(PEOPLE + 1))
        wait_until(lambda: offset() >= head(dest), timeout=30, what="the new events applied")
        person = api.get("/persons", email=f"person{PEOPLE + 1}@example.com")
        assert person.status_code == 200, person.text
        timeline = api.get(f"/persons/{person.json()['id']}/timeline").json()["events"]
        assert len(timeline) == 4

        # Everything sent again: what the copy holds is a duplicate, the rest is new.
        for start in range(0, len(sent), 100):
            send(collector, sent[start : start + 100])
        ids = rows(dest / "events.db", "SELECT message_id FROM events")
        assert len(ids) == len(set(ids)) == len({m["messageId"] for m in sent}) + 4
    finally:
        stop_together(api, worker, collector)


def bond_data(data_dir: Path) -> None:
    """A data directory as a collector and a worker leave it: both databases, a few events."""
    fill(data_dir / "events.db", 50)
    open_state(Config(data_dir=data_dir)).close()


@pytest.mark.parametrize("case", ["not empty", "inside the data directory", "no Bond data"])
def test_backup_refuses_with_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    data_dir, dest = tmp_path / "data", tmp_path / "backup"
    if case == "no Bond data":
        data_dir.mkdir()
        reason = "no Bond data in"
    else:
        bond_data(data_dir)
    if case == "not empty":
        dest.mkdir()
        (dest / "notes.txt").write_text("mine")
        reason = "already exists and is not an empty directory"
    if case == "inside the data directory":
        dest = data_dir / "backups" / "monday"
        reason = "is inside the data directory"
    before = sorted(tmp_path.rglob("*"))

    result = run_backup(data_dir, dest)

    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("bond: ") and reason in line, line
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_backup_leaves_no_backup(tmp_path: Path, sig: signal.Signals) -> None:
    data_dir, dest = tmp_path / "data", tmp_path / "backup"
    bond_data(data_dir)

    # Stopped once state.db is copied and before events.db is.
    result = run_backup(data_dir, dest, env={FAULT_ENV: sig.name.removeprefix("SIG")})

    assert not dest.exists()
    if sig == signal.SIGTERM:
        assert result.returncode == 1
        assert "stopped by SIGTERM: no backup was written" in result.stderr
        assert [p.name for p in tmp_path.iterdir()] == ["data"]
    else:
        assert result.returncode == -signal.SIGKILL
        # What a kill leaves is hidden, named as unfinished, and does not stand in the way.
        [partial] = [p.name for p in tmp_path.iterdir() if p.name != "data"]
        assert partial.startswith(".backup.partial-")
    dest.mkdir()  # an empty directory is taken as a new one

    again = run_backup(data_dir, dest)

    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["events.db", "state.db"]
    summary = orjson.loads(again.stdout)
    assert summary["events"] == 50
    # The next backup beside it deletes what the killed one left: a copy of every key.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "data"]
    if sig == signal.SIGKILL:
        assert summary["removed_unfinished"] == [partial]
    else:
        assert "removed_unfinished" not in summary


def test_an_unfinished_copy_of_a_backup_still_running_is_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    bond_data(data_dir)
    running = tmp_path / f".monday.partial-{os.getpid()}-x1y2"
    running.mkdir()
    gone = tmp_path / ".sunday.partial-999999999-a1b2"  # beyond any pid Linux hands out
    gone.mkdir()
    (gone / "state.db").write_bytes(b"keys")
    stranger = tmp_path / ".notes.partial-999999999-mine"
    stranger.write_text("a file, not a copy")

    result = run_backup(data_dir, tmp_path / "tuesday")

    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["removed_unfinished"] == [gone.name]
    assert running.is_dir() and stranger.is_file() and not gone.exists()


def test_an_erasure_between_the_two_copies_is_in_the_backup(data_dir: Path, tmp_path: Path) -> None:
    collector, worker = Collector(data_dir), Worker(data_dir)
    start_together(collector, worker)
    try:
        send(collector, visit(0) + visit(1))
        wait_until(lambda: applied(data_dir) >= head(data_dir), timeout=30, what="the worker")
    finally:
        stop_together(worker, collector)
    dest = tmp_path / "backup"

    def erase() -> None:
        erasure = run_cli(data_dir, "erase", "person0@example.com")
        assert erasure.returncode == 0, erasure.stdout + erasure.stderr

    result = paused_backup(data_dir, dest, erase)

    assert result.returncode == 0, result.stderr
    api = ReadApi(dest).start()
    try:
        assert api.get("/persons", email="person0@example.com").status_code == 404
        assert api.get("/persons", email="person1@example.com").status_code == 200
        audit = api.get("/privacy/audit").json()
        assert [entry["action"] for entry in audit["entries"]] == ["erase"]
    finally:
        api.stop()


def paused_backup(
    data_dir: Path, dest: Path, between_the_copies: Callable[[], None]
) -> subprocess.CompletedProcess[str]:
    """`bond backup`, stopped (SIGSTOP) after each database it copies: after state.db, and
    before events.db is copied, `between_the_copies` runs."""
    args = [sys.executable, "-m", "bond.cli", "backup", str(dest), "--data-dir", str(data_dir)]
    env = {**os.environ, FAULT_ENV: "STOP"}
    with subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as backup:
        pauses = 0
        while backup.poll() is None:
            wait_until(lambda: backup.poll() is not None or stopped(backup), what="the backup")
            if backup.poll() is None:
                if pauses == 0:
                    between_the_copies()
                pauses += 1
                backup.send_signal(signal.SIGCONT)
        out, err = backup.communicate()
    assert pauses >= 2, err
    return subprocess.CompletedProcess(args, backup.returncode, out, err)


def stopped(process: subprocess.Popen[str]) -> bool:
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "T"
