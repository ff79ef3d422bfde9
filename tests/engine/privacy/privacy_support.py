"""Shared pieces of the privacy tests: two people's traffic, the stack, a search of every byte.

Not a conftest.py: a second module named conftest would shadow the root one.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from conftest import (
    ADMIN_TOKEN,
    ROOT,
    WRITE_KEY,
    BondProcess,
    Collector,
    ReadApi,
    Worker,
    start_together,
    start_worker,
    stop_together,
    wait_until,
)

T0 = 1_780_000_000_000
MINUTE = 60_000
ANN_EMAIL = "Ann.Erased@Example.com"
ANN_USER = "ann-7731"
ANN_NAME = "Annabel Erasedotter"
ANN_PHONE = "ann-phone-4f1c"
SHARED_LAPTOP = "family-laptop-9d2e"
BOB_EMAIL = "bob.kept@example.com"
BOB_USER = "bob-5520"
BOB_NAME = "Bob Keptson"
# What must not survive Ann's erasure anywhere (compared lowercase with lowercased bytes).
ANN_NEEDLES = (ANN_EMAIL.lower(), ANN_USER, ANN_NAME.lower(), ANN_PHONE)
ALERT_RULES = """
[[alerts.rules]]
name = "everyone"
kind = "identified"
threshold = 0
"""


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def post(collector: Collector, messages: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{collector.url}/v1/batch",
        content=orjson.dumps({"batch": messages, "writeKey": WRITE_KEY}),
        # A browser's request: its address is the visitor's (a server's would not be kept).
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example"},
        timeout=30,
    )


def event(n: int, type_: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "messageId": f"m-{n}",
        "timestamp": iso(T0 + minute * MINUTE),
        "context": {"timezone": "Europe/Paris", "page": {"url": "https://shop.example/"}},
        **fields,
    }


def two_people() -> list[dict[str, Any]]:
    """Ann browses anonymously, signs up, buys, uses her phone and a server-side call; Bob logs
    in later on the laptop Ann used (a shared computer) and browses on."""
    ann_traits = {"email": ANN_EMAIL, "name": ANN_NAME, "plan": "gold"}
    return [
        event(1, "page", 0, anonymousId=SHARED_LAPTOP, name="Home"),
        event(
            2,
            "track",
            1,
            anonymousId=SHARED_LAPTOP,
            event="Product Viewed",
            properties={"sku": "LIN-1", "note": f"gift for {ANN_NAME}"},
        ),
        event(3, "identify", 2, anonymousId=SHARED_LAPTOP, userId=ANN_USER, traits=ann_traits),
        event(
            4,
            "track",
            3,
            anonymousId=SHARED_LAPTOP,
            userId=ANN_USER,
            event="Order Completed",
            properties={"order_id": "o-ann-1", "total": 120.0, "email": ANN_EMAIL},
        ),
        event(5, "page", 4, anonymousId=ANN_PHONE, name="Phone home"),
        event(6, "identify", 5, anonymousId=ANN_PHONE, traits={"email": ANN_EMAIL}),
        event(
            7,
            "track",
            6,
            userId=ANN_USER,
            event="Subscription Renewed",
            properties={"plan": "gold"},
        ),
        event(
            8,
            "identify",
            60,
            anonymousId=SHARED_LAPTOP,
            userId=BOB_USER,
            traits={"email": BOB_EMAIL, "name": BOB_NAME},
        ),
        event(
            9,
            "track",
            61,
            anonymousId=SHARED_LAPTOP,
            userId=BOB_USER,
            event="Product Viewed",
            properties={"sku": "MUG-2"},
        ),
        event(10, "page", 62, anonymousId="bob-phone-77aa", name="Bob's phone"),
        event(11, "identify", 63, anonymousId="bob-phone-77aa", traits={"email": BOB_EMAIL}),
        # Refused by validation, kept in the rejected table with Ann's email in its body.
        {"type": "identify", "anonymousId": "undefined", "traits": {"email": ANN_EMAIL}},
    ]


@dataclass
class Stack:
    collector: Collector
    worker: BondProcess
    api: ReadApi
    env: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.collector.data_dir

    def head(self) -> int:
        with sqlite3.connect(self.data_dir / "events.db") as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def offset(self) -> int:
        with sqlite3.connect(self.data_dir / "state.db") as conn:
            row = conn.execute("SELECT seq FROM engine_offset").fetchone()
            return int(row[0]) if row else 0

    def erasing(self) -> int:
        with sqlite3.connect(self.data_dir / "state.db") as conn:
            row = conn.execute("SELECT count(*) FROM erasure_requests WHERE state != 'done'")
            return int(row.fetchone()[0])

    def caught_up(self) -> None:
        """The worker has applied the log's current head and carried out every erasure."""
        head = self.head()
        wait_until(
            lambda: self.offset() >= head and not self.erasing(),
            timeout=30,
            what="the worker to catch up",
        )

    def person(self, **key: str) -> dict[str, Any] | None:
        response = self.api.get("/persons", **key)
        return response.json() if response.status_code == 200 else None

    def timeline(self, person_id: int) -> list[dict[str, Any]]:
        response = self.api.get(f"/persons/{person_id}/timeline", limit="500")
        assert response.status_code == 200, response.text
        return list(response.json()["events"])

    def erase(self, **who: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.api.url}/erasures", json=who, headers=self.api.headers, timeout=10
        )
        assert response.status_code == 202, response.text
        erasure_id = response.json()["id"]

        def finished() -> dict[str, Any] | None:
            state = self.api.get(f"/erasures/{erasure_id}").json()
            return state if state["state"] == "done" else None

        return wait_until(finished, timeout=30, what=f"erasure {erasure_id}")  # type: ignore[no-any-return]

    def restart_worker(self, env: dict[str, str] | None = None) -> None:
        self.worker.stop()
        self.worker = start_worker(self.data_dir, {**self.env, **(env or {})})


@contextmanager
def stack(data_dir: Path, worker_env: dict[str, str] | None = None) -> Iterator[Stack]:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / "bond.toml"
    config.write_text(ALERT_RULES)
    env = {"BOND_CONFIG": str(config)}
    # The processes take None to unset a variable; this one only sets.
    process_env: dict[str, str | None] = {**env}
    collector = Collector(data_dir, env=process_env)
    worker = Worker(data_dir, {**env, **(worker_env or {})})
    api = ReadApi(data_dir, env=process_env)
    start_together(collector, worker, api)
    running = Stack(collector, worker, api, env)
    try:
        yield running
    finally:
        stop_together(running.api, running.worker, running.collector)


def run_cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bond.cli", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        env={**_base_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _base_env() -> dict[str, str]:
    return {**os.environ, "BOND_WRITE_KEY": WRITE_KEY, "BOND_ADMIN_TOKEN": ADMIN_TOKEN}


def database_files(
    data_dir: Path, databases: tuple[str, ...] = ("events.db", "state.db")
) -> list[Path]:
    return [
        data_dir / f"{db}{suffix}"
        for db in databases
        for suffix in ("", "-wal", "-shm")
        if (data_dir / f"{db}{suffix}").exists()
    ]


def found_in_bytes(
    data_dir: Path,
    needles: tuple[str, ...],
    databases: tuple[str, ...] = ("events.db", "state.db"),
) -> list[tuple[str, str]]:
    """(file, needle) for every needle whose bytes appear in a database file, any case."""
    hits = []
    for path in database_files(data_dir, databases):
        raw = path.read_bytes().lower()
        hits += [(path.name, n) for n in needles if n.lower().encode() in raw]
    return hits


def found_in_tables(data_dir: Path, needles: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(database, table, needle) for every needle in any column of any row, any case."""
    hits = []
    for name in ("events.db", "state.db"):
        with sqlite3.connect(data_dir / name) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    text = " ".join(
                        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                        for v in row
                    ).lower()
                    hits += [(name, table, n) for n in needles if n.lower() in text]
    return hits
