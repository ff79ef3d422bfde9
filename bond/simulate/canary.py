"""`bond simulate`: generated households through the real collector and worker, then scored.

It starts `bond serve` and `bond worker` as subprocesses on a free port with a temporary data
directory, posts the traffic as Segment batches (identifies included) in time order, waits for
the worker to apply everything, and reports ingest throughput and latency, stitch latency (a
batch holding identifies acknowledged -> the worker has applied it) and attribution quality
against the ground truth, read from the worker's own state.db.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from bond.bench.processes import cpu_seconds, free_port
from bond.errors import BondError
from bond.simulate.households import Settings, generate
from bond.simulate.offline import batches, score
from bond.simulate.report import print_report
from bond.simulate.traffic import messages, truth_of
from engine.households import store

WRITE_KEY = "bond-simulate-write-key"
BATCH_EVENTS = 500
WEEK_MS = 7 * 86_400_000


def run(settings: Settings, *, as_json: bool, timeout_s: float = 1800.0) -> int:
    now_ms = int(time.time() * 1000)
    # The simulated weeks end a day before now: the collector clamps future timestamps.
    settings = replace(settings, start_ms=now_ms - (settings.weeks + 2) * WEEK_MS)
    started = time.perf_counter()
    households = generate(settings)
    truth = truth_of(households)
    with tempfile.TemporaryDirectory(prefix="bond-simulate-") as tmp, Stack(Path(tmp)) as stack:
        sent = send(stack, messages(households))
        wait_caught_up(stack, timeout_s)
        worker_cpu = cpu_seconds(stack.procs[1].pid)
        state = sqlite3.connect(f"file:{stack.data_dir / 'state.db'}?mode=ro", uri=True)
        account_of = _accounts(state)
        quality = score(state, store.attributions(state), truth, account_of, settings)
        state.close()
    report: dict[str, Any] = {
        "households": len(households),
        "sessions": len(truth.sessions),
        "conversions": len(truth.orders),
        "difficulty": settings.difficulty,
        "seed": settings.seed,
        "events": sent["events"],
        "ingest": {
            "events_per_s": round(sent["events"] / sent["seconds"], 1),
            "batch_p50_ms": sent["p50_ms"],
            "batch_p99_ms": sent["p99_ms"],
            "requests": sent["requests"],
        },
        "stitch_latency_ms": sent["stitch"],
        "worker_catch_up_s": round(sent["catch_up_s"], 2),
        # The worker's own CPU time (identity graph, households, alerts) for the whole run.
        "worker_cpu_s": round(worker_cpu, 2) if worker_cpu is not None else None,
        "worker_events_per_cpu_s": round(sent["events"] / worker_cpu) if worker_cpu else None,
        "total_s": round(time.perf_counter() - started, 1),
        "quality": quality,
    }
    print_report(report, as_json=as_json)
    return 0


class Stack:
    """`bond serve` and `bond worker` on a free port over one temporary data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Stack:
        env = {**os.environ, "BOND_WRITE_KEY": WRITE_KEY, "BOND_DATA_DIR": str(self.data_dir)}
        base = [sys.executable, "-m", "bond.cli", "--data-dir", str(self.data_dir)]
        for args in (["serve", "--port", str(self.port)], ["worker"]):
            log = (self.data_dir / f"{args[0]}.log").open("wb")
            self.procs.append(
                subprocess.Popen([*base, *args], env=env, stdout=subprocess.DEVNULL, stderr=log)
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.__exit__(None, None, None)
                raise BondError(f"the collector did not start; see {self.data_dir}/serve.log")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def send(stack: Stack, stream: Iterator[dict[str, Any]]) -> dict[str, Any]:
    latencies: list[float] = []
    events = 0
    watcher = _StitchWatcher(stack.data_dir)
    watcher.start()
    started = time.perf_counter()
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        for batch in batches(stream, BATCH_EVENTS):
            body = orjson.dumps({"writeKey": WRITE_KEY, "batch": batch})
            t0 = time.perf_counter()
            response = client.post(
                "/v1/batch", content=body, headers={"content-type": "application/json"}
            )
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise BondError(f"the collector answered {response.status_code}: {response.text}")
            events += len(batch)
            if any(m["type"] == "identify" for m in batch):
                watcher.acked(time.perf_counter())
    seconds = time.perf_counter() - started
    catch_up_started = time.perf_counter()
    stitch = watcher.finish()
    ms = np.array(latencies) * 1000
    return {
        "events": events,
        "requests": len(latencies),
        "seconds": seconds,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "stitch": stitch,
        "catch_up_s": time.perf_counter() - catch_up_started,
    }


class _StitchWatcher(threading.Thread):
    """Times each acknowledged batch with identifies until the worker's offset passes it."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(daemon=True)
        self.data_dir = data_dir
        self.pending: list[tuple[int, float]] = []
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.events: sqlite3.Connection | None = None

    def acked(self, at: float) -> None:
        if self.events is None:
            self.events = sqlite3.connect(
                f"file:{self.data_dir / 'events.db'}?mode=ro", uri=True, check_same_thread=False
            )
        head = int(self.events.execute("SELECT max(seq) FROM events").fetchone()[0] or 0)
        with self.lock:
            self.pending.append((head, at))

    def run(self) -> None:
        state: sqlite3.Connection | None = None
        while not self.done.is_set() or self.pending:
            if state is None and (self.data_dir / "state.db").exists():
                state = sqlite3.connect(f"file:{self.data_dir / 'state.db'}?mode=ro", uri=True)
            offset = _offset(state) if state is not None else 0
            now = time.perf_counter()
            with self.lock:
                while self.pending and self.pending[0][0] <= offset:
                    self.latencies.append(now - self.pending.pop(0)[1])
            time.sleep(0.005)

    def finish(self) -> dict[str, float | int]:
        self.done.set()
        self.join()
        ms = np.array(self.latencies or [0.0]) * 1000
        return {
            "batches": len(self.latencies),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
        }


def _offset(state: sqlite3.Connection) -> int:
    try:
        row = state.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def wait_caught_up(stack: Stack, timeout_s: float) -> None:
    events = sqlite3.connect(f"file:{stack.data_dir / 'events.db'}?mode=ro", uri=True)
    head = int(events.execute("SELECT max(seq) FROM events").fetchone()[0] or 0)
    events.close()
    state = sqlite3.connect(f"file:{stack.data_dir / 'state.db'}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout_s
    while _offset(state) < head:
        if time.monotonic() > deadline or stack.procs[1].poll() is not None:
            raise BondError(f"the worker did not catch up; see {stack.data_dir}/worker.log")
        time.sleep(0.05)
    state.close()


def _accounts(state: sqlite3.Connection) -> dict[int, str]:
    # User ids are sealed at rest; the reader opens them with each person's key.
    from engine.timeline import IdentityReader

    reader = IdentityReader(state)
    persons = state.execute(
        "SELECT DISTINCT person_id FROM identifier_index WHERE kind = 'user_id'"
    ).fetchall()
    accounts = {}
    for (person,) in persons:
        profile = reader.profile(int(person))
        if profile is not None and profile["user_ids"]:
            accounts[int(person)] = str(profile["user_ids"][-1])
    return accounts
