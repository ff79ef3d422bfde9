"""`bond erase`, `bond unsuppress` and `bond export`: the operator's privacy commands.

`bond erase` queues the erasure in state.db. When no worker runs on the data directory (the
worker lock is free), it takes the lock and does what the worker would: applies the log up to
its head (with the worker's hooks) and carries the erasure out, which is safe because nothing
else writes the identity state then. When a worker runs, it leaves the work to
it and waits for the result; if the worker does not finish in time, it says so and the request
stays queued.
"""

from __future__ import annotations

import getpass
import sqlite3
import sys
import time
from typing import Any, TextIO

import orjson

from bond.config import Config
from bond.errors import BadRequest, NotFound
from bond.storage.eventlog import SqliteEventLog
from bond.storage.sqlite import connect
from engine.hooks import default_hooks
from engine.privacy import audit, requests
from engine.privacy.crypto import blind
from engine.privacy.erase import asked_forms
from engine.privacy.export import export_person
from engine.privacy.lock import WorkerLock
from engine.privacy.schema import migrate_privacy
from engine.privacy.suppression import forms
from engine.schema import migrate_identity
from engine.timeline import IdentityReader
from engine.worker import Worker

POLL_S = 0.1


def open_privacy_state(config: Config) -> sqlite3.Connection:
    conn = connect(config.state_db, durable=False)
    migrate_identity(conn)
    migrate_privacy(conn)
    return conn


def erase(config: Config, who: str, *, wait_s: float, out: TextIO = sys.stdout) -> int:
    if not asked_forms("any", who):
        raise BadRequest(f"{who!r} is not an email or user id (placeholders do not count)")
    conn = open_privacy_state(config)
    try:
        request_id = requests.enqueue(conn, "any", who, f"cli:{getpass.getuser()}")
        lock = WorkerLock(config.data_dir)
        if lock.acquire():
            try:
                _erase_as_worker(config)
            finally:
                lock.release()
        else:
            out.write(f"erasure {request_id} queued; the running worker carries it out\n")
        state = _wait(conn, request_id, wait_s)
    finally:
        conn.close()
    out.write(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode() + "\n")
    if state["state"] != "done":
        out.write(
            f"erasure {request_id} is not finished after {wait_s:g}s (step: {state['step']}); "
            "it stays queued and the worker completes it. Check with "
            f"GET /api/erasures/{request_id}.\n"
        )
        return 3
    return 0


def _erase_as_worker(config: Config) -> None:
    worker = Worker(config, default_hooks(config))
    try:
        worker.run_erasures()
    finally:
        worker.close()


def _wait(conn: sqlite3.Connection, request_id: int, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        state = requests.public(conn, request_id)
        assert state is not None
        if state["state"] == "done" or time.monotonic() >= deadline:
            return state
        time.sleep(POLL_S)


def unsuppress(config: Config, who: str, *, out: TextIO = sys.stdout) -> int:
    """Let events with this identifier in again (an erasure asked for by mistake)."""
    found = forms(who)
    if not found:
        raise BadRequest(f"{who!r} is not an identifier (placeholders do not count)")
    log_ = SqliteEventLog(config.events_db)
    try:
        key = log_.suppression_key()
        removed = log_.unsuppress(blind(key, kind, value) for kind, value in found)
    finally:
        log_.close()
    conn = open_privacy_state(config)
    try:
        audit.record(
            conn,
            "unsuppress",
            requested_by=f"cli:{getpass.getuser()}",
            counts={"identifiers": removed},
        )
    finally:
        conn.close()
    if not removed:
        out.write("nothing to do: that identifier was not suppressed\n")
        return 1
    out.write(f"unsuppressed {removed} identifier(s); new events with it are accepted again\n")
    return 0


def export(config: Config, who: str, *, out: TextIO = sys.stdout) -> int:
    conn = open_privacy_state(config)
    log_ = SqliteEventLog(config.events_db)
    try:
        reader = IdentityReader(conn)
        person_id = reader.find(email=who) or reader.find(user_id=who)
        document = export_person(conn, log_, person_id) if person_id is not None else None
    finally:
        log_.close()
        conn.close()
    if document is None:
        raise NotFound(f"no person known by the email or user id {who!r}")
    out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
