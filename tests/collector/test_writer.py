"""Group commit, back-pressure and health, against a running `bond serve` on real SQLite files."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from bond.errors import Unavailable
from bond.storage.eventlog import SqliteEventLog
from collector.writer import Writer
from conftest import WRITE_KEY, Collector, full_disk_for_children, wait_until

FRAME = 24 + 4096  # a WAL frame: its header and a page


def batch(n: int, prefix: str, padding: int = 0) -> bytes:
    properties = {"padding": "x" * padding}
    events = [
        {"type": "page", "anonymousId": "a", "messageId": f"{prefix}-{i}", "properties": properties}
        for i in range(n)
    ]
    return orjson.dumps({"writeKey": WRITE_KEY, "batch": events})


@contextmanager
def write_lock(db: Path) -> Iterator[None]:
    """Hold the event log's write lock from another connection, as a stuck writer would."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def commit_process(server: Collector) -> int:
    """The pid of the collector's commit process."""
    assert server.proc is not None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # exited while we looked
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server.proc.pid and b"collector.commit_process" in cmdline:
            return int(entry)
    raise AssertionError("the collector has no commit process")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def metric(server: Collector, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_full_queue_answers_503_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    config = tmp_path / "bond.toml"
    config.write_text("[collector]\nqueue_max_events = 10\n")
    server = Collector(tmp_path / "data", env={"BOND_CONFIG": str(config)}).start()
    try:
        with ThreadPoolExecutor(2) as pool:
            with write_lock(server.data_dir / "events.db"):
                waiting = pool.submit(
                    httpx.post, f"{server.url}/v1/batch", content=batch(8, "first")
                )
                wait_until(lambda: metric(server, "bond_writer_queue_events") == 8, what="queued")
                refused = httpx.post(f"{server.url}/v1/batch", content=batch(5, "second"))
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "1"
                assert "retry" in refused.json()["reason"]
                assert not waiting.done(), "no 2xx before the commit"
            assert waiting.result(timeout=10).status_code == 200
        retried = httpx.post(f"{server.url}/v1/batch", content=batch(5, "second"))
        assert retried.status_code == 200
        with sqlite3.connect(server.data_dir / "events.db") as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 13
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("requests", "events", "padding"),
    [
        (20, 1, 0),
        # Batches of 50 KB, more than a pipe holds by default (64 KB): all their rows must
        # still reach the commit process at once, not one pipe's worth per commit.
        (12, 100, 400),
    ],
    ids=["single events", "batches"],
)
def test_requests_waiting_on_a_commit_share_the_next_one(
    collector: Collector, requests: int, events: int, padding: int
) -> None:
    def send(i: int) -> int:
        body = batch(events, f"c{i}", padding=padding)
        return httpx.post(f"{collector.url}/v1/batch", content=body).status_code

    queued = requests * events
    before = metric(collector, "bond_commit_seconds_count")
    with ThreadPoolExecutor(requests) as pool:
        # The first request's commit is stuck on the lock; the others queue up behind it.
        with write_lock(collector.data_dir / "events.db"):
            sent = [pool.submit(send, i) for i in range(requests)]
            wait_until(
                lambda: metric(collector, "bond_writer_queue_events") == queued, what="queued"
            )
        assert {f.result(timeout=10) for f in sent} == {200}
    assert metric(collector, "bond_events_accepted_total") == queued
    # One commit for the request that was first, one for the others that waited together.
    assert metric(collector, "bond_commit_seconds_count") - before == 2


def test_health_is_503_while_the_log_cannot_be_written(collector: Collector) -> None:
    assert httpx.get(f"{collector.url}/healthz").json()["status"] == "ok"
    done = threading.Event()
    result: dict[str, httpx.Response] = {}

    def send() -> None:
        result["response"] = httpx.post(
            f"{collector.url}/v1/batch", content=batch(1, "locked"), timeout=30
        )
        done.set()

    with write_lock(collector.data_dir / "events.db"):
        health = httpx.get(f"{collector.url}/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        threading.Thread(target=send).start()
        # The writer gives up after SQLite's busy timeout; the request is refused, not lost.
        assert done.wait(timeout=30)
    assert result["response"].status_code == 503
    assert "cannot be written: database is locked" in result["response"].json()["reason"]
    # The next commit, with no restart; a health check alone would also say so 2 s later.
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(1, "after")).status_code == 200
    assert httpx.get(f"{collector.url}/healthz").status_code == 200


def test_a_log_deleted_under_the_collector_is_refused_not_acknowledged(
    collector: Collector,
) -> None:
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(1, "before")).status_code == 200
    shutil.rmtree(collector.data_dir)  # an operator's cleanup run against the wrong directory
    response = httpx.post(f"{collector.url}/v1/batch", content=batch(2, "gone"), timeout=30)
    assert response.status_code == 503
    health = httpx.get(f"{collector.url}/healthz", timeout=30)
    assert health.status_code == 503
    assert "deleted or replaced" in health.json()["reason"]


def test_metrics_are_prometheus_text(collector: Collector) -> None:
    httpx.post(f"{collector.url}/v1/batch", content=batch(3, "m"))
    httpx.post(f"{collector.url}/v1/batch", content=batch(3, "m"))
    httpx.post(
        f"{collector.url}/v1/track",
        content=orjson.dumps({"writeKey": WRITE_KEY, "userId": "null", "event": "x"}),
    )
    text = httpx.get(f"{collector.url}/metrics").text
    assert 'bond_requests_total{route="batch",status="200"} 2' in text
    assert 'bond_requests_total{route="single",status="400"} 1' in text
    assert "bond_events_accepted_total 6" in text
    assert "bond_events_deduplicated_total 3" in text
    assert 'bond_events_rejected_total{reason="missing_id"} 1' in text
    assert "# TYPE bond_commit_seconds histogram" in text
    assert 'bond_commit_seconds_bucket{le="+Inf"}' in text
    assert "bond_writer_queue_events 0" in text
    assert "bond_writer_exits_total 0" in text
    assert "bond_event_log_writable 1" in text
    assert "bond_commit_failures_total 0" in text


def test_commits_reach_the_database_file_itself_soon_after(
    collector: Collector, tmp_path: Path
) -> None:
    # SQLite's own checkpoint would wait for 1,000 WAL pages; the collector's runs after commits.
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(5, "ck")).status_code == 200

    def in_the_database_file() -> bool:
        copy = tmp_path / "without-wal.db"
        shutil.copyfile(collector.data_dir / "events.db", copy)
        conn = sqlite3.connect(copy)
        try:
            return bool(conn.execute("SELECT count(*) FROM events").fetchone()[0] == 5)
        except sqlite3.DatabaseError:  # copied while a checkpoint was writing it
            return False
        finally:
            conn.close()

    wait_until(in_the_database_file, timeout=10, what="a checkpoint")


def test_a_commit_process_that_dies_fails_its_requests_and_is_replaced(
    collector: Collector,
) -> None:
    first = commit_process(collector)
    with ThreadPoolExecutor(1) as pool, write_lock(collector.data_dir / "events.db"):
        waiting = pool.submit(httpx.post, f"{collector.url}/v1/batch", content=batch(2, "lost"))
        wait_until(lambda: metric(collector, "bond_writer_queue_events") == 2, what="queued")
        os.kill(first, signal.SIGKILL)
        refused = waiting.result(timeout=10)
    # Not acknowledged, so the client sends it again; nothing is half done.
    assert refused.status_code == 503
    assert "retry" in refused.json()["reason"]
    health = httpx.get(f"{collector.url}/healthz")
    if health.status_code == 503:  # until a new one has committed the health check's probe
        assert health.json()["reason"] in (
            "the event log's writer stopped; retry shortly",
            "the event log's writer was killed by SIGKILL",
        )
    wait_until(lambda: httpx.get(f"{collector.url}/healthz").status_code == 200, what="a new one")
    assert commit_process(collector) != first
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(2, "lost")).status_code == 200
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(1, "after")).status_code == 200
    with sqlite3.connect(collector.data_dir / "events.db") as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    assert '"event":"commit_process_exited","code":-9' in collector.log
    assert metric(collector, "bond_writer_exits_total") == 1


def test_the_commit_process_ignores_signals_and_ends_with_the_collector(data_dir: Path) -> None:
    # Ctrl-C in a terminal signals the whole process group; the commit process must not stop
    # before the collector has sent it everything.
    server = Collector(data_dir).start()
    child = commit_process(server)
    os.kill(child, signal.SIGINT)
    os.kill(child, signal.SIGTERM)
    assert httpx.post(f"{server.url}/v1/batch", content=batch(1, "kept")).status_code == 200
    assert commit_process(server) == child
    server.stop()
    assert '"event":"collector_stopped"' in server.log
    wait_until(lambda: not running(child), what="the commit process to end")

    # Killed without a chance to stop it, the collector's end of the pipe closes all the same.
    server = Collector(data_dir).start()
    child = commit_process(server)
    server.kill()
    wait_until(lambda: not running(child), what="the orphaned commit process to end")


def test_a_log_the_commit_process_cannot_open_is_the_health_reason(tmp_path: Path) -> None:
    async def run() -> str | None:
        writer = Writer(tmp_path, queue_max_events=10)  # a directory, not a database file
        await writer.start()
        with pytest.raises(Unavailable):
            await writer.submit([], [])
        reason = writer.last_error
        await writer.stop()
        return reason

    with ThreadPoolExecutor(1) as pool:  # asyncio.run refuses Playwright's running loop
        reason = pool.submit(lambda: asyncio.run(run())).result(timeout=30)
    assert reason is not None and "cannot be opened" in reason


def test_a_commit_process_that_cannot_be_started_leaks_no_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-python-here"))

    async def run() -> None:
        with pytest.raises(FileNotFoundError):
            await Writer(tmp_path / "events.db", queue_max_events=10).start()

    before = len(os.listdir("/proc/self/fd"))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(run())).result(timeout=30)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_full_disk_is_refused_with_its_reason_until_there_is_room_again(
    collector: Collector,
) -> None:
    db = collector.data_dir / "events.db"
    wal = db.with_name("events.db-wal")
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(5, "before")).status_code == 200
    # A reader's snapshot keeps the WAL from starting over, so once it has grown past its old
    # size every commit extends it. Then the commit process may write one frame further: what
    # a full disk does to it, the room a failed commit's partial write left included.
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()
    size = wal.stat().st_size
    sent = iter(range(1_000))

    def grown() -> bool:
        posted = httpx.post(f"{collector.url}/v1/batch", content=batch(200, f"g{next(sent)}"))
        assert posted.status_code == 200
        return wal.stat().st_size > size

    wait_until(grown, interval=0, what="the WAL to grow")
    child = commit_process(collector)
    soft, hard = resource.prlimit(child, resource.RLIMIT_FSIZE)
    resource.prlimit(child, resource.RLIMIT_FSIZE, (wal.stat().st_size + FRAME, hard))
    try:
        refused = httpx.post(f"{collector.url}/v1/batch", content=batch(600, "full"))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "10"
        reason = refused.json()["reason"]
        assert reason.startswith("the event log cannot be written: disk I/O error")
        assert "nothing of this request was stored" in reason
        # Its one page fits where the batch did not: health must not say ok all the same.
        health = httpx.get(f"{collector.url}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json()["reason"].startswith("the event log cannot be written")
        ones = [batch(1, f"one{n}") for n in range(20)]  # one statement each
        posted = [httpx.post(f"{collector.url}/v1/batch", content=one) for one in ones]
        assert {response.status_code for response in posted} == {503}
        assert metric(collector, "bond_event_log_writable") == 0
        assert metric(collector, "bond_commit_failures_total") >= 21
    finally:
        resource.prlimit(child, resource.RLIMIT_FSIZE, (soft, hard))
        reader.close()
    # The client's retry, with no restart: the first commit that succeeds ends it.
    assert httpx.post(f"{collector.url}/v1/batch", content=batch(600, "full")).status_code == 200
    assert httpx.get(f"{collector.url}/healthz").status_code == 200
    assert metric(collector, "bond_event_log_writable") == 1
    failed = [line for line in collector.log.splitlines() if "event_log_write_failed" in line]
    assert len(failed) == 1 and "disk I/O error" in failed[0]  # one line, not one a commit
    assert '"event":"event_log_write_recovered"' in collector.log
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = "SELECT count(*) FROM events WHERE message_id LIKE ?"
        assert conn.execute(stored, ("full-%",)).fetchone()[0] == 600
        assert conn.execute(stored, ("one%",)).fetchone()[0] == 0


def test_a_collector_started_on_a_full_disk_refuses_with_its_reason_until_there_is_room(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    db = data_dir / "events.db"
    # The existing log, as a collector left it, open elsewhere (a worker, `bond api`), its WAL
    # emptied: the next commit must grow a file.
    reader = SqliteEventLog(db)
    reader.suppression_key()
    assert reader.checkpoint() and db.with_name("events.db-wal").stat().st_size == 0
    collector = Collector(data_dir)
    with full_disk_for_children() as room:
        collector.launch()
    assert collector.proc is not None

    def health() -> httpx.Response | None:
        assert collector.proc is not None and collector.proc.poll() is None, collector.log
        try:
            return httpx.get(f"{collector.url}/healthz", timeout=10)
        except httpx.HTTPError:
            return None

    try:
        # Before, it exited at once: its lock's pid did not fit on the disk.
        health_then = wait_until(health, timeout=20, what="the collector to answer")
        assert health_then.status_code == 503
        assert health_then.json()["reason"].startswith("the event log cannot be written")
        assert (data_dir / "collector.lock").read_text() == ""
        refused = httpx.post(f"{collector.url}/v1/batch", content=batch(5, "full"))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "10"
        assert refused.json()["reason"].startswith("the event log cannot be written")
        for pid in (collector.proc.pid, commit_process(collector)):
            resource.prlimit(pid, resource.RLIMIT_FSIZE, room)
        # The client's retry, with no restart.
        assert httpx.post(f"{collector.url}/v1/batch", content=batch(5, "full")).status_code == 200
        assert httpx.get(f"{collector.url}/healthz").status_code == 200
    finally:
        collector.stop()
        reader.close()
    assert collector.proc.returncode == 0
    assert '"event":"event_log_write_recovered"' in collector.log
    with sqlite3.connect(db) as conn:
        stored = "SELECT count(*) FROM events WHERE message_id LIKE ?"
        assert conn.execute(stored, ("full-%",)).fetchone()[0] == 5


def test_a_collector_that_cannot_open_the_log_for_a_full_disk_waits_for_room(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    SqliteEventLog(data_dir / "events.db").close()
    # Its last connection closed, the log keeps no shared-memory file, and opening it makes one
    # of 32 KiB: with room for less, no process can read it (SQLite: "disk I/O error").
    assert not (data_dir / "events.db-shm").exists()
    collector = Collector(data_dir)
    with full_disk_for_children(16 * 1024) as room:
        collector.launch()
    assert collector.proc is not None

    def answered() -> httpx.Response | None:
        assert collector.proc is not None and collector.proc.poll() is None, collector.log
        try:
            return httpx.post(f"{collector.url}/v1/batch", content=batch(5, "full"), timeout=10)
        except httpx.HTTPError:
            return None

    try:
        # Before, it exited with status 1: a service manager's restarts soon give up.
        refused = wait_until(answered, timeout=20, what="the collector to answer")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "10"
        assert refused.json()["reason"].startswith("the event log cannot be opened")
        assert str(data_dir) not in refused.text, "the server's paths stay in its log"
        assert httpx.get(f"{collector.url}/healthz").status_code == 503
        # New commit processes inherit the collector's limit.
        resource.prlimit(collector.proc.pid, resource.RLIMIT_FSIZE, room)
        wait_until(
            lambda: (reply := answered()) is not None and reply.status_code == 200,
            timeout=30,
            what="ingest once there is room",
        )
        assert httpx.get(f"{collector.url}/healthz").status_code == 200
    finally:
        collector.stop()
    assert collector.proc.returncode == 0
    lines = [orjson.loads(line) for line in collector.log.splitlines()]
    events = [line["event"] for line in lines]
    # One line as each outage starts and one as it ends, however many retries were between.
    for outage in ("event_log_open", "commit_process_open"):
        assert events.count(f"{outage}_failed") == 1, events
        assert events.count(f"{outage}_recovered") == 1, events
    assert "commit_process_exited" not in events
    with sqlite3.connect(data_dir / "events.db") as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 5


def test_a_collector_with_no_room_to_create_its_log_says_so_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    collector = Collector(data_dir)
    with full_disk_for_children(16 * 1024):
        collector.launch()
    assert collector.proc is not None
    assert collector.proc.wait(timeout=30) == 1
    # Before, a plain line and no JSON: "bond: cannot open database ...: disk I/O error".
    [line] = [orjson.loads(line) for line in collector.log.splitlines()]
    assert (line["event"], line["app"]) == ("data_dir_full", "collector")
    assert line["reason"].startswith(f"the disk under {data_dir} is full (")
    assert line["reason"].endswith("free space there, then start bond serve again")
