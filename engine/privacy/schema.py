"""The privacy tables in `state.db`, migrated under the component name "privacy".

- `erasure_requests`: the queue the worker takes erasures from. `value` (the identifier asked
  for) and `plan` (the person's identifiers, needed to finish the steps in events.db) are the
  only personal data here; both are cleared in the transaction that completes the erasure.
- `privacy_audit`: what was done, when and at whose request, as counts; no personal data.

An erasure deletes, and an export reads, the rows of other components too (households, alerts),
which their own code migrates when it opens them: the worker's hooks. `bond erase` and `bond
export` run without those, so the ones a state holds are migrated here as well: after an upgrade
the first erasure may come before the first worker start.
"""

from __future__ import annotations

import sqlite3

from bond.storage.sqlite import migrate
from engine.alerts.outbox import COMPONENT as ALERTS
from engine.alerts.outbox import migrate_outbox
from engine.households.store import COMPONENT as HOUSEHOLDS
from engine.households.store import migrate_households

COMPONENT = "privacy"

MIGRATIONS = [
    """
    CREATE TABLE IF NOT EXISTS erasure_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        value TEXT,
        requested_by TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        step TEXT NOT NULL DEFAULT 'queued',
        plan BLOB,
        result BLOB,
        finished_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS erasure_requests_open ON erasure_requests (id)
        WHERE state != 'done';
    CREATE TABLE IF NOT EXISTS privacy_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        action TEXT NOT NULL,
        request_id INTEGER,
        requested_by TEXT NOT NULL,
        requested_at INTEGER,
        done_at INTEGER NOT NULL,
        counts BLOB NOT NULL
    );
    """,
]


def migrate_privacy(conn: sqlite3.Connection) -> int:
    version = migrate(conn, MIGRATIONS, name=COMPONENT)
    present = {name for (name,) in conn.execute("SELECT component FROM schema_version")}
    # A component the state never had stays absent: erasure and export skip its tables.
    if HOUSEHOLDS in present:
        migrate_households(conn)
    if ALERTS in present:
        migrate_outbox(conn)
    return version
