"""The privacy tables in `state.db`, migrated under the component name "privacy".

- `erasure_requests`: the queue the worker takes erasures from. `value` (the identifier asked
  for) and `plan` (the person's identifiers, needed to finish the steps in events.db) are the
  only personal data here; both are cleared in the transaction that completes the erasure.
- `privacy_audit`: what was done, when and at whose request, as counts; no personal data.
"""

from __future__ import annotations

import sqlite3

from bond.storage.sqlite import migrate

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
    return migrate(conn, MIGRATIONS, name=COMPONENT)
