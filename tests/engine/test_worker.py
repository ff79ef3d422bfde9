"""The worker as a real process behind a real collector: following, stitching, kill -9."""

from __future__ import annotations

import resource
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bond.config import Config
from bond.errors import StorageError
from bond.storage.eventlog import NewEvent, SqliteEventLog
from conftest import (
    WRITE_KEY,
    BondProcess,
    Collector,
    ReadApi,
    captured_logs,
    full_disk_for_children,
    start_together,
    start_worker,
    stop_together,
    wait_until,
)
from conftest import Worker as WorkerProcess
from engine import worker as worker_module
from engine.worker import Worker
from tests.engine.harness import Engine
from tests.engine.privacy import plaintext

T0 = 1_780_000_000_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def post_batch(collector: Collector, messages: list[dict[str, Any]]) -> None:
    body = {"batch": messages, "writeKey": WRITE_KEY}
    response = httpx.post(
        f"{collector.url}/v1/batch",
        content=orjson.dumps(body),
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def message(n: int, type_: str, anon: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "messageId": f"msg-{n}",
        "anonymousId": anon,
        "timestamp": iso(T0 + n),
        **fields,
    }


def log_head(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "events.db") as conn:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def state_offset(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "state.db") as conn:
        row = conn.execute("SELECT seq FROM engine_offset").fetchone()
        return int(row[0]) if row else 0


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as conn:
        return plaintext.dump(conn)


def replayed(data_dir: Path, replay: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The identity state a fresh worker makes of a copy of `data_dir`'s log, in one go."""
    replay.mkdir()
    with (
        sqlite3.connect(data_dir / "events.db") as source,
        sqlite3.connect(replay / "events.db") as copy,
    ):
        source.backup(copy)  # the log's newest pages may still be in its WAL file
    fresh = Worker(Config(data_dir=replay))
    while fresh.run_once():
        pass
    fresh.close()
    return dump(replay / "state.db")


def test_events_posted_to_the_collector_appear_stitched(
    collector: Collector, worker: BondProcess, read_api: ReadApi
) -> None:
    post_batch(
        collector,
        [
            message(1, "page", "anon-1", properties={"url": "/"}),
            message(2, "track", "anon-1", event="Product Viewed", properties={"sku": "A1"}),
            message(3, "track", "anon-1", event="Product Added", properties={"sku": "A1"}),
        ],
    )
    wait_until(
        lambda: read_api.get("/persons", anonymous_id="anon-1").status_code == 200,
        what="the anonymous person",
    )
    post_batch(
        collector,
        [message(4, "identify", "anon-1", userId="u-42", traits={"email": "Ada@Example.com"})],
    )

    def stitched() -> dict[str, Any] | None:
        response = read_api.get("/persons", email="ada@example.com")
        return response.json() if response.status_code == 200 else None

    person = wait_until(stitched, what="the identify to stitch the history")
    assert person["event_count"] == 4 and person["user_ids"] == ["u-42"]
    timeline = read_api.get(f"/persons/{person['id']}/timeline").json()
    assert [e["event"] for e in timeline["events"]] == [
        None,
        "Product Added",
        "Product Viewed",
        None,
    ]
    assert [e["type"] for e in timeline["events"]] == ["identify", "track", "track", "page"]


def test_kill_9_mid_stream_loses_and_doubles_nothing(collector: Collector, tmp_path: Path) -> None:
    config = tmp_path / "bond.toml"
    config.write_text("[engine]\nbatch_size = 5\n")
    env = {"BOND_CONFIG": str(config)}
    worker = start_worker(collector.data_dir, env)
    n, total, killed_mid_stream = 0, 12_000, 0
    for _ in range(6):
        batch = []
        for _ in range(total // 6):
            n += 1
            anon = f"anon-{n % 300}"
            if n % 37 == 0:
                batch.append(message(n, "identify", anon, userId=f"user-{n % 120}"))
            elif n % 101 == 0:
                batch.append(message(n, "alias", anon, userId=f"user-{n % 50}", previousId=anon))
            else:
                batch.append(message(n, "track", anon, event="Viewed"))
        before = state_offset(collector.data_dir)
        post_batch(collector, batch)
        wait_until(
            lambda before=before: state_offset(collector.data_dir) > before,  # type: ignore[misc]
            interval=0.002,
            what="the worker to move",
        )
        worker.kill()
        killed_mid_stream += state_offset(collector.data_dir) < n
        worker = start_worker(collector.data_dir, env)
    assert killed_mid_stream, "every kill came after the worker had caught up"
    head = log_head(collector.data_dir)
    assert head == total
    wait_until(lambda: state_offset(collector.data_dir) == head, timeout=60, what="catch up")
    worker.stop()

    state = collector.data_dir / "state.db"
    with sqlite3.connect(state) as conn:
        timeline_seqs = [r[0] for r in conn.execute("SELECT seq FROM timeline ORDER BY seq")]
        counted = conn.execute(
            "SELECT sum(event_count) FROM persons WHERE merged_into IS NULL"
        ).fetchone()[0]
    assert timeline_seqs == list(range(1, total + 1))
    assert counted == total

    # Replaying the same log from zero in one go gives exactly the state the kills left.
    assert replayed(collector.data_dir, tmp_path / "replay") == dump(state)


def test_worker_stops_cleanly_on_sigterm(collector: Collector) -> None:
    worker = start_worker(collector.data_dir)
    assert worker.stop() == 0
    assert '"event":"worker_stopped"' in worker.log


def test_an_event_the_worker_cannot_read_does_not_stop_it(data_dir: Path) -> None:
    # The collector stores events as sent, without decoding them whole, so these reach the log.
    engine = Engine(data_dir)
    try:
        nested = b'{"a":' * 300 + b"1" + b"}" * 300
        for n, body in enumerate(
            (
                b'{"type":"track","anonymousId":"pc","properties":{"x":1e999}}',
                b'{"type":"track","anonymousId":"pc","properties":%s}' % nested,
            )
        ):
            engine.log.append(
                [
                    NewEvent(
                        "default",
                        f"bad-{n}",
                        "track",
                        "pc",
                        None,
                        "Odd",
                        100 + n,
                        100,
                        None,
                        None,
                        body,
                    )
                ],
                [],
            )
        engine.track("pc", 300)
        with captured_logs() as logs:
            engine.run()
        assert [e["event"] for e in engine.timeline(anonymous_id="pc")] == ["Viewed", "Odd", "Odd"]
        assert [line["seq"] for line in logs.records("event_unreadable")] == [1, 2]
    finally:
        engine.close()


def test_a_batch_a_full_disk_refused_says_so_and_is_applied_once_later(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "data", batch_size=500)
    try:
        for n in range(300):
            engine.identify(f"anon-{n}", 1_000 + n, user=f"user-{n}", email=f"p{n}@example.com")
            engine.track(f"anon-{n}", 2_000 + n)
        conn = engine.worker.conn
        # state.db may not grow: SQLite answers as it does to a full disk, and rolls the
        # transaction back itself.
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError, match="database or disk is full"):
            engine.worker.run_once()
        conn.execute("PRAGMA max_page_count = 1073741823")  # the space is back
        engine.run()
        assert engine.worker.offset == 600
    finally:
        engine.close()
    assert replayed(tmp_path / "data", tmp_path / "replay") == dump(tmp_path / "data" / "state.db")


def send(log: SqliteEventLog, first: int, count: int) -> None:
    """Events `first` to `first + count - 1` as the collector would append them: browsers that
    browse and, now and then, identify."""
    events = []
    for n in range(first, first + count):
        anon, ts = f"anon-{n % 7}", T0 + n
        if n % 5 == 0:
            user, email = f"user-{n % 3}", f"p{n % 3}@example.com"
            body = {"type": "identify", "anonymousId": anon, "userId": user}
            body["traits"] = {"email": email}
            row = ("identify", anon, user, None)
        else:
            body = {"type": "track", "anonymousId": anon, "event": "Viewed"}
            row = ("track", anon, None, "Viewed")
        body["messageId"] = f"m-{n}"
        events.append(NewEvent("default", f"m-{n}", *row, ts, ts, None, None, orjson.dumps(body)))
    log.append(events, [])


def test_a_worker_on_a_full_disk_waits_then_applies_every_event_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = SqliteEventLog(data_dir / "events.db")  # the test appends as the collector would
    send(log, 0, 10)
    worker, api = WorkerProcess(data_dir), ReadApi(data_dir)
    start_together(worker, api)
    assert worker.proc is not None
    try:
        wait_until(lambda: state_offset(data_dir) == 10, what="the first events applied")
        # state.db's WAL only grows here (no checkpoint before 10,000 pages), so a limit at its
        # size refuses the next batch's writes as a full disk would; the worker's own log is
        # a smaller file and takes its lines.
        wal = data_dir / "state.db-wal"
        soft, hard = resource.prlimit(worker.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(worker.proc.pid, resource.RLIMIT_FSIZE, (wal.stat().st_size, hard))
        try:
            send(log, 10, 40)
            wait_until(lambda: "worker_storage_failed" in worker.log, what="the worker to say")
            time.sleep(1.2)  # a few more tries, each refused
            assert worker.proc.poll() is None  # waiting, not exited into a restart loop
            status = api.get("/status")  # reads go on from what was applied
            assert status.status_code == 200
            assert (status.json()["offset"], status.json()["lag"]) == (10, 40)
            assert state_offset(data_dir) == 10
        finally:
            resource.prlimit(worker.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
        wait_until(lambda: state_offset(data_dir) == 50, what="the rest applied, with room")
    finally:
        stop_together(api, worker)
        log.close()
    assert worker.proc.returncode == 0
    lines = [orjson.loads(line) for line in worker.log.splitlines()]
    [failed] = [line for line in lines if line["event"] == "worker_storage_failed"]
    assert "disk I/O error" in failed["reason"] and failed["offset"] == 10
    [recovered] = [line for line in lines if line["event"] == "worker_storage_recovered"]
    # Tried again after growing pauses, not at once: a loop that spun would count thousands.
    assert 2 <= recovered["failures"] < 10 and recovered["offset"] == 50
    assert replayed(data_dir, tmp_path / "replay") == dump(data_dir / "state.db")


def test_progress_is_logged_when_the_offset_moved_not_while_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A line at every pass over the log rather than every 10 s; idle passes come every 0.5 s.
    monkeypatch.setattr(worker_module, "PROGRESS_EVERY_S", 0.0)
    engine = Engine(tmp_path)
    engine.track("laptop", 1_000)
    stop = threading.Timer(1.6, engine.worker._stop, (signal.SIGTERM, None))
    stop.start()
    with captured_logs() as logs:
        engine.worker.run()
    stop.join()
    progress = logs.records("worker_progress")
    assert [line["offset"] for line in progress] == [1]
    engine.close()


def test_a_worker_started_on_a_full_disk_waits_then_applies_every_event_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    log = SqliteEventLog(data_dir / "events.db")
    send(log, 0, 10)
    first = start_worker(data_dir)
    wait_until(lambda: state_offset(data_dir) == 10, what="the first events applied")
    assert first.stop() == 0
    send(log, 10, 40)
    # Its last connection closed, a database keeps no shared-memory file, and opening it makes
    # one of 32 KiB: a limit below that refuses it as a full disk does (SQLite: "disk I/O
    # error"), yet takes the worker's lines.
    log.close()
    assert not (data_dir / "events.db-shm").exists()
    worker = WorkerProcess(data_dir)
    # Room for the worker's lines, not for that file.
    with full_disk_for_children(16 * 1024) as room:
        worker.launch()
    assert worker.proc is not None
    try:
        wait_until(
            lambda: worker.proc.poll() is not None or "worker_storage_failed" in worker.log,
            what="the worker to say",
        )
        time.sleep(1.2)  # a few more tries, each refused
        # Before, it exited with "cannot open database": its service manager would start it
        # again into the same refusal.
        assert worker.proc.poll() is None, worker.log
        resource.prlimit(worker.proc.pid, resource.RLIMIT_FSIZE, room)
        wait_until(lambda: state_offset(data_dir) == 50, what="every event applied, with room")
    finally:
        worker.stop()
    assert worker.proc.returncode == 0
    lines = [orjson.loads(line) for line in worker.log.splitlines()]
    events = [line["event"] for line in lines]
    assert events[:3] == ["worker_storage_failed", "worker_storage_recovered", "worker_started"]
    assert "disk I/O error" in lines[0]["reason"] and lines[2]["offset"] == 10
    assert replayed(data_dir, tmp_path / "replay") == dump(data_dir / "state.db")


def test_a_worker_with_no_room_to_create_its_databases_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    worker = WorkerProcess(data_dir)
    with full_disk_for_children(16 * 1024):  # room for its lines, not for a new database
        worker.launch()
    assert worker.proc is not None
    assert worker.proc.wait(timeout=30) == 1
    # Before, a plain line and no JSON: "bond: cannot open database ...: disk I/O error".
    [line] = [orjson.loads(line) for line in worker.log.splitlines()]
    assert (line["event"], line["app"]) == ("data_dir_full", "worker")
    assert line["data_dir"] == str(data_dir)
    assert line["reason"].startswith(f"the disk under {data_dir} is full (cannot ")
    assert "disk I/O error" in line["reason"]
    assert line["reason"].endswith("free space there, then start bond worker again")
