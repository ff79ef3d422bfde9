"""Fixtures shared by tests/ and e2e/: real Bond processes on free ports, real Chromium, and
Bond's log lines captured."""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import pytest
from segment.analytics.client import Client

from bond import logs
from bond.bench.processes import free_port

ROOT = Path(__file__).resolve().parent
WRITE_KEY = "test-write-key"
ADMIN_TOKEN = "test-admin-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until(check, *, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class BondProcess:
    """One `bond` subcommand running as a real process, with its stderr kept for the test."""

    def __init__(
        self, args: list[str], data_dir: Path, env: dict[str, str | None] | None = None
    ) -> None:
        self.args = args
        self.data_dir = data_dir
        # None unsets a variable (an empty value is an error for Bond's secrets).
        merged = {
            **os.environ,
            "BOND_WRITE_KEY": WRITE_KEY,
            "BOND_ADMIN_TOKEN": ADMIN_TOKEN,
            **(env or {}),
        }
        self.env = {name: value for name, value in merged.items() if value is not None}
        self.log_path = data_dir / f"{args[0]}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start the process and wait until it is ready for what a test does next."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the process without waiting: several launched together start side by side."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.args[0]}-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bond.cli", "--data-dir", str(self.data_dir), *self.args],
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def wait_ready(self) -> None:
        """Nothing to wait for by default: the process runs."""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def segment_client(collector: Collector, **options: Any) -> tuple[Client, list[Exception]]:
    """Segment's Python library sending to `collector` with only its host changed (as a shop's
    backend would), and the errors it reports: a test expects none."""
    failures: list[Exception] = []
    client = Client(
        WRITE_KEY,
        host=collector.url,
        on_error=lambda error, _batch: failures.append(error),
        **options,
    )
    return client, failures


def start_together(*processes: BondProcess) -> None:
    """Start processes side by side: each waits for the others' imports no longer."""
    for process in processes:
        process.launch()
    for process in processes:
        process.wait_ready()


def stop_together(*processes: BondProcess) -> None:
    """Stop processes side by side, in the order given (each signalled before any is waited)."""
    for process in processes:
        assert process.proc is not None
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGTERM)
    # Waited, not signalled again: a second SIGTERM that lands once a process has put back the
    # default handler to shut down kills it (exit -15) before it finishes.
    for process in processes:
        process.proc.wait(timeout=15)


class Collector(BondProcess):
    def __init__(
        self, data_dir: Path, port: int | None = None, env: dict[str, str | None] | None = None
    ):
        self.port = port or free_port()
        super().__init__(["serve", "--port", str(self.port)], data_dir, env)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        wait_until(self._healthy, timeout=20, what=f"collector on {self.url}")

    def restart(self) -> Collector:
        self.stop()
        return self.start()

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"collector exited with {self.proc.returncode}:\n{self.log}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "bond-data"


@pytest.fixture
def collector(data_dir: Path) -> Iterator[Collector]:
    """A real `bond serve` on a free port with its own data directory."""
    server = Collector(data_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Debian's Chromium driven by Playwright (its own browser download needs the internet).

    One per test module: while Playwright's sync API is open, its event loop counts as running
    in this thread and `asyncio.run` refuses to start, so a module of async tests run after a
    browser module in the same process (as `pytest -n` schedules them) would fail.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class ReadApi(BondProcess):
    """A real `bond api` (the engine's read API) on a free port."""

    def __init__(self, data_dir: Path, env: dict[str, str | None] | None = None) -> None:
        self.port = free_port()
        super().__init__(["api", "--port", str(self.port)], data_dir, env)
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def wait_ready(self) -> None:
        wait_until(self._up, timeout=20, what=f"read API on {self.url}")

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=5)

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"read API exited with {self.proc.returncode}:\n{self.log}")
        try:
            return self.get("/status").status_code == 200
        except httpx.HTTPError:
            return False


class Worker(BondProcess):
    """A real `bond worker`, ready once it has opened its state."""

    def __init__(self, data_dir: Path, env: dict[str, str | None] | None = None) -> None:
        super().__init__(["worker"], data_dir, env)

    def wait_ready(self) -> None:
        wait_until(lambda: "worker_started" in self.log, timeout=20, what="the worker to start")


def start_worker(data_dir: Path, env: dict[str, str | None] | None = None) -> Worker:
    """A real `bond worker` on `data_dir`, returned once it has opened its state."""
    return Worker(data_dir, env).start()


@pytest.fixture
def worker(collector: Collector) -> Iterator[BondProcess]:
    """A real `bond worker` following the collector's event log."""
    running = start_worker(collector.data_dir)
    yield running
    running.stop()


@pytest.fixture
def read_api(collector: Collector) -> Iterator[ReadApi]:
    """A real `bond api` reading the state of the collector's data directory."""
    running = ReadApi(collector.data_dir).start()
    yield running
    running.stop()


@pytest.fixture
def engine(data_dir: Path):  # type: ignore[no-untyped-def]
    """An in-process engine (event log, worker, reader) on a fresh data directory."""
    from tests.engine.harness import Engine

    running = Engine(data_dir)
    yield running
    running.close()


class LogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self, event: str) -> list[dict[str, Any]]:
        lines = [orjson.loads(line) for line in self.text.splitlines() if line]
        return [line for line in lines if line["event"] == event]


@contextmanager
def full_disk_for_children(room: int = 0) -> Iterator[tuple[int, int]]:
    """Processes started in the block cannot grow a file past `room` bytes, as on a full disk;
    this one only for the block. Gives the limits to put back for them once there is room."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
    try:
        yield soft, hard
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Bond's JSON log lines written inside the block."""
    capture = LogCapture()
    # Back to where they went before, not to sys.stderr now: under capsys that is a stream
    # pytest closes after the test, and every later log line would fail on it.
    previous = logs.redirect(capture.stream)
    try:
        yield capture
    finally:
        logs.redirect(previous)
