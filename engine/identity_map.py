"""The identity map: every event stream's time ranges and the person each range belongs to, for
data people who keep the raw events in their own warehouse and join Bond's answer to them.

A row is one segment of one browser (engine/schema.py), with its owner resolved through merges:
an event of `anonymous_id` at `timestamp` belongs to the row whose [from_ts, to_ts) holds the
timestamp (null: unbounded), so the anonymous history stitched at a login and the splits of a
shared browser come out of a plain range join. A user id's server-side events (sent with no
anonymous id) are a stream of their own: its row has `anonymous_id` null and that user id.

Anonymous persons are in it too: every stored event then joins exactly one row (an inner join
drops nothing), and the whole map reads in key order through the browsers' unique index, a page
at a time, with no filter that could read many browsers to fill one page.

Pages are by browser key, and a browser's ranges always come whole in one page, read in one
transaction: they partition its time even while the worker splits it between pages.
`snapshot` reads the whole map in one read transaction: a snapshot at one worker offset.

A re-sync can be incremental. The token of a pull is the worker offset it was read at; with
`changed_since` a pull holds only the browsers whose rows changed after that offset, each
whole, and the persons erased since (by id: the consumer deletes every stream with a row of
theirs; a stream of theirs that someone else keeps a part of is among the changed). What
changes a browser's rows is marked as it is written, with the worker offset before the batch
plus one (engine/store.py `map_stamp`): any of its segments written (new browser, split, merge,
an erasure's hand-over), a person becoming identified or getting a user id (every browser they
own, through their merged persons too), a person erased (`map_removed`). A state migrated to
version 6 marked nothing before, so a token older than the migration is refused (410): only a
full pull is right then.
"""

from __future__ import annotations

import base64
import binascii
import csv
import os
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple, TextIO

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bond.config import Config
from bond.errors import BadRequest, Gone, StorageError
from bond.http import json_response
from bond.logs import log
from bond.storage.sqlite import connect, rollback
from engine.privacy import crypto
from engine.privacy.keys import KeyRing
from engine.schema import migrate_identity
from engine.store import MAX_TS, MIN_TS
from engine.timeline import page_limit, whole_number

Handler = Callable[[Request], Awaitable[Response]]
Format = Literal["jsonl", "csv"]
DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000
COLUMNS = ("anonymous_id", "from_ts", "to_ts", "person_id", "user_id", "identified")
# The version of the cursor's shape, so a later shape can refuse an older cursor by name.
_CURSOR_PREFIX = b"map1:"
_BAD_CURSOR = (
    "after must be the 'next' of a previous identity-map page (leave it out to start at the "
    "beginning)"
)
# A spreadsheet takes a cell starting with one of these for a formula (CSV injection); such a
# cell gets a leading apostrophe, and so does one that starts with an apostrophe, so that a
# loader gets the id back exactly by dropping one leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")

_BAD_TOKEN = (
    "changed_since must be the 'sync' of a previous identity-map pull (a whole number); "
    "leave it out for a full pull"
)

# Segments in browser key order, each browser's by time. The browsers' unique key index gives
# the order and the segments' (browser_id, start_ts) index the order within: no sort, so a page
# reads about `limit` rows however large the map is.
_PAGE = (
    "SELECT b.key, s.start_ts, s.end_ts, s.person_id FROM browsers b "
    "JOIN segments s ON s.browser_id = b.id WHERE b.key > ? ORDER BY b.key, s.start_ts LIMIT ?"
)
# The same, of the browsers changed after offset :since only: those with a segment written
# since, or owned by a person (or one merged into them) whose identity changed since. Both
# through indexes of what was marked, then sorted by key (CROSS JOIN: rather than walking the
# whole key index): a page costs what changed since the token, not the map's size.
_CHANGED_PAGE = (
    "WITH RECURSIVE marked (id) AS (SELECT id FROM persons WHERE map_seq > :since "
    "UNION SELECT p.id FROM marked m JOIN persons p ON p.merged_into = m.id), "
    "changed (id) AS (SELECT browser_id FROM map_changes WHERE seq > :since "
    "UNION SELECT s.browser_id FROM marked m JOIN segments s ON s.person_id = m.id) "
    "SELECT b.key, s.start_ts, s.end_ts, s.person_id FROM changed c "
    "CROSS JOIN browsers b ON b.id = c.id JOIN segments s ON s.browser_id = b.id "
    "WHERE b.key > :after ORDER BY b.key, s.start_ts LIMIT :limit"
)
_REMOVED = "SELECT DISTINCT erased_person_id FROM map_removed WHERE seq > ? ORDER BY 1"
_REST_OF_BROWSER = (
    "SELECT b.key, s.start_ts, s.end_ts, s.person_id FROM browsers b "
    "JOIN segments s ON s.browser_id = b.id WHERE b.key = ? AND s.start_ts > ? "
    "ORDER BY s.start_ts"
)


class MapPage(NamedTuple):
    rows: list[dict[str, Any]]
    next: str | None
    # The worker offset the page was read at: the events it applied up to there are in it.
    as_of: int
    # With `changed_since`, on the first page: the persons erased since; the consumer deletes
    # every stream that has a row of one of them (before replacing the streams sent).
    removed_persons: list[int]


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(_CURSOR_PREFIX + key.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> str:
    """The browser key a page ended at; BadRequest when `text` is no page's `next`."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = raw.removeprefix(_CURSOR_PREFIX).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(_BAD_CURSOR) from None
    if not raw.startswith(_CURSOR_PREFIX) or key[:2] not in ("a:", "u:"):
        raise BadRequest(_BAD_CURSOR)
    return key


def read_page(
    conn: sqlite3.Connection,
    limit: int,
    after: str | None = None,
    changed_since: str | None = None,
) -> MapPage:
    """The ranges of the browsers after the cursor `after` (of those changed since the token
    `changed_since`, when given): about `limit` rows, and the rest of the last browser's
    ranges (a browser is never cut across pages); in one read transaction."""
    start = decode_cursor(after) if after is not None else ""
    conn.execute("BEGIN")
    try:
        as_of = _offset(conn)
        since = None if changed_since is None else _since(conn, changed_since, as_of)
        rows, last = _rows_after(conn, start, limit, since)
        # A full page followed by nothing gets no cursor, rather than one to an empty page.
        more = last is not None and bool(_rows_after(conn, last, 1, since)[0])
        removed = _removed(conn, since) if since is not None and after is None else []
    finally:
        rollback(conn)  # a read transaction: nothing to keep
    cursor = encode_cursor(last) if more and last is not None else None
    return MapPage(rows, cursor, as_of, removed)


class Snapshot(NamedTuple):
    as_of: int
    rows: Iterator[dict[str, Any]]
    removed_persons: list[int]


@contextmanager
def snapshot(
    conn: sqlite3.Connection, page: int = DEFAULT_LIMIT, changed_since: str | None = None
) -> Iterator[Snapshot]:
    """The whole map (or what changed since the token `changed_since`), read `page` ranges at
    a time inside one read transaction: one state at one worker offset, however long the reader
    takes and whatever the worker writes meanwhile (in WAL mode a reader keeps the state it
    began with until its transaction ends)."""
    conn.execute("BEGIN")
    try:
        as_of = _offset(conn)
        since = None if changed_since is None else _since(conn, changed_since, as_of)
        removed = [] if since is None else _removed(conn, since)
        yield Snapshot(as_of, _all_rows(conn, page, since), removed)
    finally:
        rollback(conn)


def _all_rows(conn: sqlite3.Connection, page: int, since: int | None) -> Iterator[dict[str, Any]]:
    after: str | None = ""
    while after is not None:
        rows, after = _rows_after(conn, after, page, since)
        yield from rows


def _since(conn: sqlite3.Connection, token: str, as_of: int) -> int:
    """The offset a `changed_since` token names, checked against what this state can answer."""
    since = whole_number(token)
    if since is None:
        raise BadRequest(_BAD_TOKEN)
    if since > as_of:
        raise BadRequest(
            f"changed_since {since} is ahead of this Bond's worker offset {as_of}: it is the "
            "token of another Bond, or the state was restored from an older backup; do a "
            "full pull (leave changed_since out)"
        )
    row = conn.execute("SELECT since FROM map_sync WHERE id = 1").fetchone()
    floor = int(row[0]) if row else 0
    if since < floor:
        raise Gone(
            f"changed_since {since} is older than offset {floor}, from which on this Bond "
            "records what changed (it was upgraded then); do a full pull (leave changed_since "
            "out) and re-sync from its sync token"
        )
    return since


def _removed(conn: sqlite3.Connection, since: int) -> list[int]:
    return [int(person) for (person,) in conn.execute(_REMOVED, (since,))]


def _offset(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _rows_after(
    conn: sqlite3.Connection, after: str, limit: int, since: int | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of the browsers after key `after` (changed after offset `since`, when given), and
    the last browser's key when more may follow."""
    if since is None:
        found = conn.execute(_PAGE, (after, limit)).fetchall()
    else:
        found = conn.execute(
            _CHANGED_PAGE, {"since": since, "after": after, "limit": limit}
        ).fetchall()
    if len(found) < limit:
        return _shape(conn, found), None
    last_key, last_start = found[-1][0], found[-1][1]
    found += conn.execute(_REST_OF_BROWSER, (last_key, last_start)).fetchall()
    return _shape(conn, found), last_key


def _shape(
    conn: sqlite3.Connection, found: list[tuple[str, int, int, int]]
) -> list[dict[str, Any]]:
    owners = _owners(conn, {person for *_, person in found})
    user_ids = _first_user_ids(conn, {root for root, identified in owners.values() if identified})
    rows: list[dict[str, Any]] = []
    previous_key = None
    for key, start, end, person in found:
        root, identified = owners.get(person, (person, False))
        if key == previous_key and rows[-1]["person_id"] == root:
            # Adjacent segments of one person (their event that arrived late split off the end
            # of the range before theirs): one range for the join.
            rows[-1]["to_ts"] = None if end >= MAX_TS else end
            continue
        previous_key = key
        browser = key.startswith("a:")
        rows.append(
            {
                "anonymous_id": key[2:] if browser else None,
                "from_ts": None if start <= MIN_TS else start,
                "to_ts": None if end >= MAX_TS else end,
                "person_id": root,
                # A user id's stream is joined on its own user id, which its person holds.
                "user_id": user_ids.get(root) if browser else key[2:],
                "identified": identified,
            }
        )
    return rows


def _owners(conn: sqlite3.Connection, person_ids: set[int]) -> dict[int, tuple[int, bool]]:
    """Each person's surviving person (following merges) and whether that one is identified."""
    known: dict[int, tuple[int | None, bool]] = {}
    asked: set[int] = set()
    wanted = set(person_ids)
    while wanted:
        asked |= wanted
        for person, merged_into, identified in conn.execute(
            "SELECT id, merged_into, identified FROM persons "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(sorted(wanted)).decode(),),
        ):
            known[person] = (merged_into, bool(identified))
        wanted = {into for into, _ in known.values() if into is not None} - asked
    owners = {}
    for person in person_ids:
        root, seen = person, {person}
        while (into := known.get(root, (None, False))[0]) is not None and into not in seen:
            root = into
            seen.add(into)
        owners[person] = (root, known.get(root, (None, False))[1])
    return owners


def _first_user_ids(conn: sqlite3.Connection, person_ids: Iterable[int]) -> dict[int, str]:
    """Each person's oldest user id (ties by value, as `read_identifiers` orders them).

    Only user ids: they are what a warehouse joins on, and an email is more personal than the
    map needs (GET /api/persons/{id} has it for whoever must look)."""
    # `+kind`: through the person index; on the (kind, digest) key it read every user id.
    rows = conn.execute(
        "SELECT person_id, added_at, sealed FROM identifier_index "
        "WHERE person_id IN (SELECT value FROM json_each(?)) AND +kind = 'user_id'",
        (orjson.dumps(sorted(person_ids)).decode(),),
    ).fetchall()
    keys = KeyRing(conn)  # for this page only: none of a person erased since is kept
    keys.load(crypto.key_id_of(sealed) for *_, sealed in rows)
    first: dict[int, tuple[int, str]] = {}
    for person, added_at, sealed in rows:
        value = keys.open(sealed, crypto.IDENTIFIER)
        if value is not None:
            found = (added_at, value.decode())
            first[person] = min(first.get(person, found), found)
    return {person: value for person, (_at, value) in first.items()}


# -- the read API -----------------------------------------------------------------------------


def identity_map_routes(config: Config, guarded: Callable[[Handler], Handler]) -> list[Route]:
    """`GET /api/identity-map?limit=1000&after=CURSOR&changed_since=SYNC`.

    A page is one read transaction on a connection of the map's own (it must not share one
    with the API's other reads), taken in the thread pool: a page of 10,000 rows takes a
    tenth of a second or more, which the event loop would otherwise spend away from every
    other request. Pages are read one at a time: a pull is a sequence of them anyway."""
    conns: list[sqlite3.Connection] = []
    lock = threading.Lock()

    def page(limit: int, after: str | None, changed_since: str | None) -> MapPage:
        with lock:
            if not conns:
                conns.append(open_map_state(config))
            return read_page(conns[0], limit, after, changed_since)

    async def identity_map(request: Request) -> Response:
        params = request.query_params
        limit = page_limit(params.get("limit"), default=DEFAULT_LIMIT, most=MAX_LIMIT)
        changed_since = params.get("changed_since")
        found = await run_in_threadpool(page, limit, params.get("after") or None, changed_since)
        body: dict[str, Any] = {"rows": found.rows, "next": found.next, "as_of": found.as_of}
        body["sync"] = str(found.as_of)
        if changed_since is not None:
            body["removed_persons"] = found.removed_persons
        return json_response(body)

    return [Route("/api/identity-map", guarded(identity_map))]


def open_map_state(config: Config) -> sqlite3.Connection:
    conn = connect(config.state_db, durable=False)
    migrate_identity(conn)
    conn.execute("PRAGMA query_only = ON")
    return conn


# -- bond identity-map ------------------------------------------------------------------------


def write_map(
    config: Config,
    *,
    fmt: Format,
    output: Path | None,
    out: TextIO = sys.stdout,
    changed_since: str | None = None,
) -> int:
    """Write the whole map (one snapshot) to `output`, or to `out`; with `changed_since`, the
    browsers changed since then, after a row with `removed` true for each person erased. A file
    appears whole or not at all: it is written beside its name and renamed when complete."""
    conn = open_map_state(config)
    try:
        with snapshot(conn, changed_since=changed_since) as taken:
            rows = taken.rows
            if changed_since is not None:
                rows = _with_removed(rows, taken.removed_persons)
            if output is None:
                count = _write(rows, fmt, out, removed=changed_since is not None)
                # stdout holds the rows alone: the token for the next pull goes to the log.
                log("identity_map_written", rows=count, sync=str(taken.as_of))
                return 0
            partial = output.with_name(output.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8", newline="") as file:
                    count = _write(rows, fmt, file, removed=changed_since is not None)
                os.replace(partial, output)
            except BaseException as exc:
                partial.unlink(missing_ok=True)
                if isinstance(exc, OSError):
                    raise StorageError(f"cannot write the identity map to {output}: {exc}") from exc
                raise
    finally:
        conn.close()
    out.write(
        f"wrote {count:,} rows to {output} (as of worker offset {taken.as_of}; "
        f"re-sync with --changed-since {taken.as_of})\n"
    )
    return 0


def _with_removed(rows: Iterator[dict[str, Any]], removed: list[int]) -> Iterator[dict[str, Any]]:
    """An incremental pull's rows, after a row per erased person: its streams are to be deleted
    before the streams sent replace theirs."""
    for person in removed:
        yield {
            "anonymous_id": None,
            "from_ts": None,
            "to_ts": None,
            "person_id": person,
            "user_id": None,
            "identified": False,
            "removed": True,
        }
    for row in rows:
        yield {**row, "removed": False}


def _write(rows: Iterator[dict[str, Any]], fmt: Format, out: TextIO, *, removed: bool) -> int:
    """The rows in `fmt` (with a `removed` column when `removed`); returns how many."""
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(orjson.dumps(row).decode() + "\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*COLUMNS, "removed") if removed else COLUMNS)
    for row in rows:
        cells = [
            row["anonymous_id"] and _cell(row["anonymous_id"]),
            row["from_ts"],
            row["to_ts"],
            row["person_id"],
            row["user_id"] and _cell(row["user_id"]),
            _flag(row["identified"]),
        ]
        if removed:
            cells.append(_flag(row["removed"]))
        writer.writerow(cells)
        count += 1
    return count


def _flag(value: object) -> str:
    return "true" if value else "false"


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
