"""One `bond serve` and one `bond worker` per data directory, as an operator meets it: a second
one refuses with one JSON line naming the holder, and a kill -9 leaves nothing that blocks a
restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from bond.bench.processes import free_port
from bond.storage.dirlock import WORKER, DataDirLock
from conftest import ROOT, BondProcess, Collector, start_worker, wait_until


def refusal(process: BondProcess) -> dict[str, Any]:
    """The one line a refused process logs, once it has exited with 1."""
    proc = process.proc
    assert proc is not None
    # Before, a second collector did not exit: it ran beside the first.
    wait_until(
        lambda: proc.poll() is not None or "_started" in process.log,
        timeout=30,
        what="the second process to exit",
    )
    assert process.stop() == 1, process.log  # stopped, should it run
    lines: list[dict[str, Any]] = [orjson.loads(line) for line in process.log.splitlines()]
    assert [line["event"] for line in lines] == ["data_dir_in_use"], process.log
    return lines[0]


def test_a_second_collector_on_a_data_directory_refuses_to_start(collector: Collector) -> None:
    assert collector.proc is not None
    second = BondProcess(["serve", "--port", str(free_port())], collector.data_dir).start()

    line = refusal(second)
    assert (line["app"], line["pid"]) == ("collector", collector.proc.pid)
    assert f"another bond serve is running on {collector.data_dir}" in line["reason"]
    assert httpx.get(f"{collector.url}/healthz", timeout=5).status_code == 200

    # The kernel drops a killed holder's lock: the next one starts at once.
    collector.kill()
    collector.start()


def test_a_second_worker_on_a_data_directory_refuses_to_start(data_dir: Path) -> None:
    first = start_worker(data_dir)
    assert first.proc is not None
    second = BondProcess(["worker"], data_dir).start()

    # Before, a line of plain text, after the second worker had opened both databases.
    line = refusal(second)
    assert (line["app"], line["pid"]) == ("worker", first.proc.pid)
    assert "another bond worker is running" in line["reason"]

    first.kill()
    restarted = start_worker(data_dir)
    assert restarted.stop(signal.SIGINT) == 0


def test_the_demo_refuses_a_data_directory_a_collector_runs_on(collector: Collector) -> None:
    logs = collector.data_dir / "logs"
    logs.mkdir()
    (logs / "collector.log").write_text("an earlier demo's log\n")
    ports = [f"--{name}={free_port()}" for name in ("port", "api-port", "shop-port")]
    demo = subprocess.run(
        [sys.executable, "-m", "bond.cli", "--data-dir", str(collector.data_dir), "demo", *ports],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert demo.returncode == 1
    assert "another bond serve is running" in demo.stderr
    # Refused before it emptied the log files to start its own processes.
    assert (logs / "collector.log").read_text() == "an earlier demo's log\n"


# Holds `worker`'s lock on the data directory argv[1] with no room for any file to grow, as on a
# full disk, until its input ends; says whether it took it.
_HOLD_ON_A_FULL_DISK = """
import resource, sys
from pathlib import Path
from bond.storage.dirlock import WORKER, DataDirLock

resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
print(DataDirLock(Path(sys.argv[1]), WORKER).acquire(), flush=True)
sys.stdin.read()
"""


def test_the_lock_is_taken_on_a_disk_with_no_room_for_the_pid(data_dir: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_ON_A_FULL_DISK, str(data_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        taken = holder.stdout.readline()
        if taken == "True\n":
            lock = DataDirLock(data_dir, WORKER)
            assert lock.path.read_text() == ""
            assert not lock.acquire()  # held all the same, by a holder it cannot name
            assert lock.holder() is None
        _, error = holder.communicate(timeout=10)
    # Before, "cannot lock ...: [Errno 27] File too large", and no process started.
    assert (taken, holder.returncode) == ("True\n", 0), error
    lock = DataDirLock(data_dir, WORKER)
    assert lock.acquire()
    assert lock.holder() == os.getpid()
    lock.release()
