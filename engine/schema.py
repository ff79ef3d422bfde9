"""The identity state's tables in `state.db`, migrated under the component name "identity".

Stitching is resolved through the graph, never by rewriting event rows:
- a `browser` is one event stream: an anonymous id, or a user id's server-side events;
- a `segment` is a time range of one browser [start_ts, end_ts) owned by one person. A browser
  has one segment until a second identified person logs in on it (a shared computer without
  reset()); then the range splits at that identify, so each keeps their own events;
- `timeline` holds each event once, clustered by (browser, timestamp, seq): one b-tree insert
  when applied, and a range of a browser's history is one contiguous read.
  A person's timeline is the union of their segments' ranges, so an identify that hands a
  browser to a person costs one segment update whatever the length of its history;
- `persons.merged_into` keeps old person ids resolvable after an anonymous person is folded
  into an identified one (the union-find parent).

Version 2 encrypts personal data at rest (see engine/privacy/keys.py): `person_keys` holds one
key per person; `identifier_index` replaces `identifiers` with a keyed digest of each value
(lookups by email still work, the email is not stored) and the value sealed with the person's
key; traits and timeline data become sealed blobs. `id_floor` keeps ids from being reused once
an erasure has deleted the newest rows. `engine.privacy.legacy` moves a version 1 state over.
Version 3 marks the timeline rows of events that named a person (`claim`). Version 4 indexes
identity events by their other person. Version 5 lists identified people by `active_at`.
Version 6 records what an incremental identity-map pull needs (see engine/identity_map.py).
Version 7 gives the rows applied before version 3 their claim (see engine/claims.py).
Version 8 indexes the timeline's orders, so a person's orders are read without scanning their
other events (a lifetime value, the dashboard's order list).
"""

from __future__ import annotations

import sqlite3

from bond.storage.sqlite import migrate
from engine.privacy.legacy import seal_legacy
from engine.store import MIN_TS

COMPONENT = "identity"
# Segment's e-commerce spec name for a placed order; `timeline_orders` holds these rows only.
ORDER_EVENT = "Order Completed"
ORDERS_INDEX = "timeline_orders"

# IF NOT EXISTS: the worker and the read API may both start on a fresh directory and race to
# migrate; the loser then finds the tables there and only records the version.
MIGRATIONS = [
    """
    CREATE TABLE IF NOT EXISTS engine_offset (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS persons (
        id INTEGER PRIMARY KEY,
        merged_into INTEGER,
        identified INTEGER NOT NULL,
        first_seen INTEGER,
        last_seen INTEGER,
        event_count INTEGER NOT NULL,
        traits BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS identifiers (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        person_id INTEGER NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (kind, value)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS identifiers_person ON identifiers (person_id);
    CREATE TABLE IF NOT EXISTS browsers (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE
    );
    CREATE TABLE IF NOT EXISTS segments (
        id INTEGER PRIMARY KEY,
        browser_id INTEGER NOT NULL,
        start_ts INTEGER NOT NULL,
        end_ts INTEGER NOT NULL,
        person_id INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS segments_browser ON segments (browser_id, start_ts);
    CREATE INDEX IF NOT EXISTS segments_person ON segments (person_id);
    CREATE TABLE IF NOT EXISTS timeline (
        browser_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        name TEXT,
        data BLOB,
        PRIMARY KEY (browser_id, ts, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS identity_events (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        person_id INTEGER NOT NULL,
        other_person_id INTEGER,
        reason TEXT,
        anonymous_events_stitched INTEGER NOT NULL,
        browsers_stitched INTEGER NOT NULL,
        first_seen INTEGER,
        at INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS identity_events_person ON identity_events (person_id, id);
    CREATE TABLE IF NOT EXISTS identity_counts (
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (kind, reason)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE IF NOT EXISTS person_keys (
        person_id INTEGER PRIMARY KEY,
        key BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS privacy_secrets (
        name TEXT PRIMARY KEY,
        secret BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS identifier_index (
        kind TEXT NOT NULL,
        digest BLOB NOT NULL,
        person_id INTEGER NOT NULL,
        added_at INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        PRIMARY KEY (kind, digest)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS identifier_index_person ON identifier_index (person_id);
    CREATE INDEX IF NOT EXISTS persons_merged_into ON persons (merged_into)
        WHERE merged_into IS NOT NULL;
    CREATE TABLE IF NOT EXISTS id_floor (
        name TEXT PRIMARY KEY,
        next INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # The person an event named (user id or email), NULL for an anonymous one: where a late
    # login on a shared browser must stop taking the browser over (see IdentityGraph._split).
    # Rows applied before this version have none.
    "ALTER TABLE timeline ADD COLUMN claim INTEGER",
    # A person's identity events are those naming them on either side: without this index the
    # other side is found by reading every identity event (a person's page, their export).
    "CREATE INDEX IF NOT EXISTS identity_events_other ON identity_events (other_person_id, id) "
    "WHERE other_person_id IS NOT NULL",
    # The people list, most recently active first, pages through this index by cursor.
    # `active_at` is the newest event time a person ever had: last_seen, except that a shared
    # browser's split can hand a person's latest events to someone else and lower last_seen.
    # The key never goes down, so a person already listed in a walk never comes again in it.
    # Only people listed need it now; the others get it from their next event on.
    f"""
    ALTER TABLE persons ADD COLUMN active_at INTEGER NOT NULL DEFAULT {MIN_TS};
    UPDATE persons SET active_at = last_seen
        WHERE identified = 1 AND merged_into IS NULL AND last_seen IS NOT NULL;
    CREATE INDEX IF NOT EXISTS persons_active ON persons (active_at, id)
        WHERE identified = 1 AND merged_into IS NULL;
    """,
    # The identity map's change marks: each is the worker offset before the batch (or erasure)
    # that wrote it, plus one, so a pull at offset T is sent again whatever is marked above T.
    # `map_changes`: a browser's ranges or their owners changed (kept beside the graph: it
    # records when, which the graph's own rows do not depend on); `persons.map_seq`: whether
    # the person is identified, or their user ids, changed (their browsers' rows show both)
    # with no segment written. `map_removed`: the persons an erasure deleted, by id alone (the
    # consumer deletes their streams; no erased identifier is kept, and the column is not a
    # `person_id` the erasure would clear). Nothing before the upgrade was marked: `map_sync`
    # keeps the offset it happened at, the oldest token an incremental pull can answer.
    """
    CREATE TABLE IF NOT EXISTS map_changes (
        browser_id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS map_changes_seq ON map_changes (seq);
    ALTER TABLE persons ADD COLUMN map_seq INTEGER;
    CREATE INDEX IF NOT EXISTS persons_map_changed ON persons (map_seq)
        WHERE map_seq IS NOT NULL;
    CREATE TABLE IF NOT EXISTS map_removed (
        seq INTEGER NOT NULL,
        erased_person_id INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS map_removed_seq ON map_removed (seq);
    CREATE TABLE IF NOT EXISTS map_sync (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        since INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO map_sync (id, since)
        SELECT 1, coalesce((SELECT seq FROM engine_offset WHERE id = 1), 0);
    """,
    # Rows applied before version 3 get their claim from engine/claims.py, run by the worker in
    # bounded steps: the events up to this offset, and a cursor in timeline key order below
    # every row. A fresh state has applied nothing and needs no row.
    """
    CREATE TABLE IF NOT EXISTS claim_backfill (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        up_to_seq INTEGER NOT NULL,
        browser_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO claim_backfill (id, up_to_seq, browser_id, ts, seq)
        SELECT 1, seq, 0, 0, 0 FROM engine_offset WHERE id = 1 AND seq > 0;
    """,
    # Partial: the worker's inserts of every other event pay nothing for it. SQLite uses a
    # partial index only for a query naming the same literal, so engine/timeline.py writes it
    # into its SQL and names the index.
    f"CREATE INDEX IF NOT EXISTS {ORDERS_INDEX} ON timeline (browser_id, ts, seq) "
    f"WHERE name = '{ORDER_EVENT}'",
]


def migrate_identity(conn: sqlite3.Connection) -> int:
    version = migrate(conn, MIGRATIONS, name=COMPONENT)
    seal_legacy(conn)
    return version
