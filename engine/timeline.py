"""Reading the identity state: find a person, their profile, their stitched timeline, and
the people list (identified people, most recently active first).

A timeline page costs the same however long a person's history is: each of the person's
segments (a browser's time range, usually one or two per browser) is read newest first through
the (browser_id, ts, seq) index up to one page, and the few short lists are merged here.

Personal data is sealed at rest (engine/privacy); this is where it is opened, so callers get
the same plaintext shapes as before. Keys are read per call and not kept, so a reader that
lives long (the read API) holds no key of a person erased since.
"""

from __future__ import annotations

import heapq
import re
import sqlite3
from bisect import bisect_right
from typing import Any, NamedTuple

import orjson

from bond.errors import BadRequest
from bond.ids import clean_id, normalize_email
from engine.privacy import crypto
from engine.privacy.keys import KeyRing
from engine.schema import ORDER_EVENT, ORDERS_INDEX
from engine.store import MIN_TS, anonymous_key, read_identifiers, user_key

MAX_PAGE = 500
# SQLite's INTEGER is signed 64-bit: a larger Python int cannot even be bound to a query.
MAX_INTEGER = 2**63 - 1
# ASCII digits only, as int() would also take signs, spaces, underscores and other scripts'
# digits; at most 19 significant ones, so int() never meets its own limit on digits.
_WHOLE_NUMBER = re.compile(r"0*([0-9]{1,19})")
# A timeline row inside segment `s`, from its start; its end is bounded with the row value
# (ts, seq), so that SQLite seeks the primary key to one end of the range, never scans it.
_IN_SEGMENT = "t.browser_id = s.browser_id AND t.ts >= s.start_ts"
# The index clause and condition of a read of orders alone. SQLite takes a partial index only
# for a query holding its condition as a literal, and without statistics it prefers the primary
# key, which would scan every event between two orders: the index is named.
_ORDERS = (f" INDEXED BY {ORDERS_INDEX}", f" AND name = '{ORDER_EVENT}'")


def whole_number(text: str) -> int | None:
    """`text` as a whole number SQLite can hold; None when it is not one."""
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None:
        return None
    number = int(match[1])
    return number if number <= MAX_INTEGER else None


def page_limit(value: str | None, *, default: int, most: int) -> int:
    """A request's `limit` parameter: `default` when absent, BadRequest outside 1 to `most`.

    Refused rather than capped: a capped page would end paging early (its `next` is null).
    """
    if value is None:
        return default
    limit = whole_number(value)
    if limit is None or not 1 <= limit <= most:
        raise BadRequest(f"limit must be a whole number from 1 to {most:,}")
    return limit


class Cursor(NamedTuple):
    """Where a newest-first page stopped: the (timestamp, seq) of its last event."""

    ts: int
    seq: int

    def encode(self) -> str:
        return f"{self.ts}:{self.seq}"

    @staticmethod
    def decode(text: str) -> Cursor:
        ts, _, seq = text.partition(":")
        cursor_ts, cursor_seq = whole_number(ts), whole_number(seq)
        if cursor_ts is None or cursor_seq is None:
            raise ValueError(f"not a timeline cursor: {text!r}")
        return Cursor(cursor_ts, cursor_seq)


class ActiveCursor(NamedTuple):
    """Where a page of the people list stopped: its last person's (active_at, id)."""

    active_at: int
    person_id: int

    def encode(self) -> str:
        return f"{self.active_at}:{self.person_id}"

    @staticmethod
    def decode(text: str) -> ActiveCursor:
        # A timeline cursor's format, but a person never seen has an active_at below zero.
        active_at, person_id = Cursor.decode(text.removeprefix("-"))
        return ActiveCursor(-active_at if text.startswith("-") else active_at, person_id)


class PeoplePage(NamedTuple):
    people: list[dict[str, Any]]
    next: ActiveCursor | None


class TimelinePage(NamedTuple):
    events: list[dict[str, Any]]
    next: Cursor | None


class StitchRange(NamedTuple):
    """One anonymous browser's time range owned by a person, and where it was identified.

    Its events before `identified_from` happened while the visitor was anonymous and became
    the person's by stitching; None means the whole range came that way (an alias, a merge).
    """

    anonymous_id: str
    start_ts: int
    end_ts: int
    identified_from: Cursor | None


class IdentityReader:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._secret: bytes | None = None

    def _keys(self) -> KeyRing:
        """A key ring for one call; the index secret (never erased) is kept across calls."""
        ring = KeyRing(self.conn, self._secret)
        self._secret = ring.secret
        return ring

    def find(
        self,
        *,
        email: str | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> int | None:
        if email is not None:
            normal = normalize_email(email)
            return self._identifier("email", normal) if normal else None
        if user_id is not None:
            clean = clean_id(user_id)
            return self._identifier("user_id", clean) if clean else None
        if anonymous_id is not None:
            # The browser's current owner: its latest segment.
            row = self.conn.execute(
                "SELECT s.person_id FROM browsers b JOIN segments s ON s.browser_id = b.id "
                "WHERE b.key = ? ORDER BY s.start_ts DESC LIMIT 1",
                (anonymous_key(anonymous_id),),
            ).fetchone()
            return int(row[0]) if row else None
        return None

    def _identifier(self, kind: str, value: str) -> int | None:
        row = self.conn.execute(
            "SELECT person_id FROM identifier_index WHERE kind = ? AND digest = ?",
            (kind, self._keys().blind(kind, value)),
        ).fetchone()
        return int(row[0]) if row else None

    def resolve(self, person_id: int) -> int | None:
        """The person `person_id` is now, following merges; None when it never existed."""
        seen = set()
        while person_id not in seen:
            seen.add(person_id)
            row = self.conn.execute(
                "SELECT merged_into FROM persons WHERE id = ?", (person_id,)
            ).fetchone()
            if row is None:
                return None
            if row[0] is None:
                return person_id
            person_id = int(row[0])
        return None

    def profile(self, person_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT identified, first_seen, last_seen, event_count, traits FROM persons "
            "WHERE id = ?",
            (person_id,),
        ).fetchone()
        if row is None:
            return None
        keys = self._keys()
        identifiers = self._identifiers(keys, person_id)
        browsers = self.conn.execute(
            "SELECT DISTINCT b.key FROM segments s JOIN browsers b ON b.id = s.browser_id "
            "WHERE s.person_id = ? ORDER BY b.key",
            (person_id,),
        ).fetchall()
        traits = orjson.loads(keys.open(row[4], crypto.TRAITS) or b"{}")
        return {
            "id": person_id,
            "identified": bool(row[0]),
            "user_ids": identifiers["user_id"],
            "emails": identifiers["email"],
            "anonymous_ids": [key[2:] for (key,) in browsers if key.startswith("a:")],
            "first_seen": row[1],
            "last_seen": row[2],
            "event_count": row[3],
            "traits": {key: value for key, (value, _at) in traits.items()},
        }

    def _identifiers(self, keys: KeyRing, person_id: int) -> dict[str, list[str]]:
        identifiers: dict[str, list[str]] = {"user_id": [], "email": []}
        for kind, value in read_identifiers(self.conn, keys, person_id):
            identifiers[kind].append(value)
        return identifiers

    def people(self, limit: int, before: ActiveCursor | None = None) -> PeoplePage:
        """Identified people, most recently active first, read through the persons_active index.

        A walk (each page read with the previous one's `next`) shows nobody twice, however the
        worker writes meanwhile: active_at never goes down, so whoever a page showed stays at or
        above its cursor. Someone active again during the walk moves above the cursor, to the
        top of the next walk; everyone else still identified it shows once, in order.
        """
        limit = max(1, min(limit, MAX_PAGE))
        bound = before or ActiveCursor(MAX_INTEGER, MAX_INTEGER)
        rows = self.conn.execute(
            "SELECT id, first_seen, last_seen, event_count, active_at FROM persons "
            "WHERE identified = 1 AND merged_into IS NULL AND (active_at, id) < (?, ?) "
            "ORDER BY active_at DESC, id DESC LIMIT ?",
            (bound.active_at, bound.person_id, limit + 1),
        ).fetchall()
        keys = self._keys()
        people = []
        for person_id, first_seen, last_seen, event_count, active_at in rows[:limit]:
            identifiers = self._identifiers(keys, person_id)
            people.append(
                {
                    "id": person_id,
                    "identified": True,
                    "user_ids": identifiers["user_id"],
                    "emails": identifiers["email"],
                    "first_seen": first_seen,
                    "last_seen": last_seen,
                    "active_at": active_at,
                    "event_count": event_count,
                }
            )
        last = rows[limit - 1] if len(rows) > limit else None
        return PeoplePage(people, ActiveCursor(last[4], last[0]) if last else None)

    def _runs(
        self,
        person_id: int,
        columns: str,
        limit: int,
        before: Cursor | None,
        *,
        browsers_only: bool = False,
        orders_only: bool = False,
    ) -> list[tuple[str, list[Any]]]:
        """Per segment that can hold one of the person's newest `limit` rows before `before`:
        its browser's key and its newest `limit` rows before `before`.

        `orders_only`: only the rows of orders, through their own index (see timeline).

        `columns` start with ts and seq; each run is newest first. A person with thousands of
        browsers (one login shared by a team) would cost a query per browser and page; their
        newest rows are found in one statement instead, and only the `limit` browsers with the
        newest of them (and any tied with the last) can hold a row of the page.
        """
        bound = before if before is not None else Cursor(MAX_INTEGER, 0)
        index, named = _ORDERS if orders_only else ("", "")
        segments = self.conn.execute(
            "SELECT s.browser_id, s.start_ts, s.end_ts, b.key, "
            f"(SELECT t.ts FROM timeline t{index} WHERE {_IN_SEGMENT} "
            # The segment's end or the cursor, whichever comes first: seq starts at 1, so
            # (end, 0) excludes the end timestamp itself.
            "AND (t.ts, t.seq) < (min(s.end_ts, :ts), "
            f"CASE WHEN s.end_ts <= :ts THEN 0 ELSE :seq END){named} "
            "ORDER BY t.ts DESC, t.seq DESC LIMIT 1) AS newest "
            "FROM segments s JOIN browsers b ON b.id = s.browser_id WHERE s.person_id = :person"
            # Not a user id's events, which the site's server sent for them (see latest_before).
            + (" AND substr(b.key, 1, 2) = 'a:'" if browsers_only else ""),
            {"ts": bound.ts, "seq": bound.seq, "person": person_id},
        ).fetchall()
        newest = sorted((row[4] for row in segments if row[4] is not None), reverse=True)
        # With `limit` browsers or more, each gives the page a row at least as new as the
        # limit-th newest browser's newest: no older row can make the page.
        floor = newest[limit - 1] if len(newest) >= limit else MIN_TS
        runs = []
        for browser_id, start, end, key, last in segments:
            if last is None or last < floor:
                continue
            upper = min(Cursor(end, 0), bound)
            rows = self.conn.execute(
                f"SELECT {columns} FROM timeline{index} "
                "WHERE browser_id = :browser AND ts >= :start AND (ts, seq) < (:ts, :seq)"
                f"{named} ORDER BY ts DESC, seq DESC LIMIT :limit",
                {
                    "browser": browser_id,
                    "start": max(start, floor),
                    "ts": upper.ts,
                    "seq": upper.seq,
                    "limit": limit,
                },
            ).fetchall()
            runs.append((key, rows))
        return runs

    def latest_before(
        self, person_id: int, before: Cursor, *, browsers_only: bool = False
    ) -> Cursor | None:
        """Where the person's newest event before `before` is; no personal data is opened.

        `browsers_only`: their newest visit, not counting what the site's server sent for them
        (events with no anonymous id, kept under the user id)."""
        runs = self._runs(person_id, "ts, seq", 1, before, browsers_only=browsers_only)
        found = [Cursor(*rows[0]) for _key, rows in runs if rows]
        return max(found) if found else None

    def timeline(
        self,
        person_id: int,
        limit: int,
        before: Cursor | None = None,
        *,
        orders_only: bool = False,
    ) -> TimelinePage:
        """A newest-first page of the person's stitched timeline; `next` continues it.

        `orders_only`: only their orders, read through the timeline's index of them, so a page
        costs the orders on it whatever lies between them.
        """
        limit = max(1, min(limit, MAX_PAGE))
        runs = [
            [(ts, seq, type_, name, data, key) for ts, seq, type_, name, data in rows]
            for key, rows in self._runs(
                person_id, "ts, seq, type, name, data", limit + 1, before, orders_only=orders_only
            )
        ]
        merged = list(
            heapq.merge(*runs, key=lambda r: (r[0], r[1]), reverse=True)  # newest first
        )[: limit + 1]
        page, more = merged[:limit], len(merged) > limit
        keys = self._keys()
        keys.load(crypto.key_id_of(row[4]) for row in page if row[4])
        events = [_event(*row[:4], _open(keys, row[4]), row[5]) for row in page]
        next_cursor = Cursor(page[-1][0], page[-1][1]) if more and page else None
        return TimelinePage(events, next_cursor)

    def identity_events(
        self, limit: int, before_id: int | None = None, person_id: int | None = None
    ) -> list[dict[str, Any]]:
        limit = max(1, min(limit, MAX_PAGE))
        before = before_id if before_id is not None else 2**62
        if person_id is None:
            ids = "SELECT id FROM identity_events WHERE id < :before ORDER BY id DESC LIMIT :limit"
        else:
            # Each side through its own index, newest first and at most a page each: an OR
            # would read the identity events of everyone.
            ids = (
                "SELECT id FROM (SELECT id FROM identity_events WHERE person_id = :person "
                "AND id < :before ORDER BY id DESC LIMIT :limit) UNION ALL "
                "SELECT id FROM (SELECT id FROM identity_events WHERE other_person_id = :person "
                "AND id < :before ORDER BY id DESC LIMIT :limit)"
            )
        rows = self.conn.execute(
            "SELECT id, kind, person_id, other_person_id, reason, anonymous_events_stitched, "
            f"browsers_stitched, first_seen, at, seq FROM identity_events WHERE id IN ({ids}) "
            "ORDER BY id DESC LIMIT :limit",
            {"before": before, "limit": limit, "person": person_id},
        ).fetchall()
        names = (
            "id",
            "kind",
            "person_id",
            "other_person_id",
            "reason",
            "anonymous_events_stitched",
            "browsers_stitched",
            "first_seen",
            "at",
            "seq",
        )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def owner_at(self, anonymous_id: str | None, user_id: str | None, ts: int) -> int | None:
        """The person an event of this browser at `ts` belongs to now (None: not applied yet)."""
        if anonymous_id:
            key = anonymous_key(anonymous_id)
        elif user_id:
            key = user_key(user_id)
        else:
            return None
        row = self.conn.execute(
            "SELECT s.person_id FROM browsers b JOIN segments s ON s.browser_id = b.id "
            "WHERE b.key = ? AND s.start_ts <= ? ORDER BY s.start_ts DESC LIMIT 1",
            (key, ts),
        ).fetchone()
        return self.resolve(int(row[0])) if row else None

    def stitch_ranges(self, person_id: int, max_changes: int = 200) -> list[StitchRange]:
        """The person's anonymous browser ranges, each with its first identifying event.

        That event is one of the person's newest `max_changes` identity events (each names the
        seq of the event that caused it) found inside the range by primary key, or else the
        range's first event when it is an identify or named a person (a browser that was theirs
        from its start: no identity event records it, as nothing anonymous joined them).

        Each change is one event, on one browser: it is looked for in the ranges whose events
        span its time, the one whose first event is nearest before it first (a visit usually
        logs in soon after it starts), and no further once found. A login shared by thousands
        of browsers would otherwise cost a lookup per browser and change.
        """
        segments = [
            row
            for row in self.conn.execute(
                "SELECT s.browser_id, b.key, s.start_ts, s.end_ts, "
                "(SELECT json_array(t.ts, t.seq, t.type = 'identify' OR t.claim IS NOT NULL) "
                f"FROM timeline t WHERE {_IN_SEGMENT} AND (t.ts, t.seq) < (s.end_ts, 0) "
                "ORDER BY t.ts, t.seq LIMIT 1), "
                f"(SELECT t.ts FROM timeline t WHERE {_IN_SEGMENT} "
                "AND (t.ts, t.seq) < (s.end_ts, 0) ORDER BY t.ts DESC, t.seq DESC LIMIT 1) "
                "FROM segments s JOIN browsers b ON b.id = s.browser_id WHERE s.person_id = ?",
                (person_id,),
            )
            # A user id's server-side events were never anonymous.
            if row[1].startswith("a:")
        ]
        # (first event, last ts, index) of the ranges holding events, by their first event.
        spans = sorted(
            (Cursor(*orjson.loads(first)[:2]), last, index)
            for index, (*_, first, last) in enumerate(segments)
            if first is not None
        )
        firsts = [span[0] for span in spans]
        identified: dict[int, Cursor] = {}
        for change in sorted(
            Cursor(at, seq)
            for at, seq in self.conn.execute(
                "SELECT at, seq FROM identity_events WHERE person_id = ? ORDER BY id DESC LIMIT ?",
                (person_id, max_changes),
            )
        ):
            for _first, last, index in reversed(spans[: bisect_right(firsts, change)]):
                if (
                    last >= change.ts
                    and self.conn.execute(
                        "SELECT 1 FROM timeline WHERE browser_id = ? AND ts = ? AND seq = ?",
                        (segments[index][0], change.ts, change.seq),
                    ).fetchone()
                ):
                    # Changes come oldest first: a range keeps the first found in it.
                    identified.setdefault(index, change)
                    break
        ranges = []
        for index, (_, key, start, end, first, _last) in enumerate(segments):
            found = identified.get(index)
            if found is None and first is not None:
                ts, seq, names = orjson.loads(first)
                found = Cursor(ts, seq) if names else None
            ranges.append(StitchRange(key[2:], start, end, found))
        return ranges

    def status(self) -> dict[str, Any]:
        offset = self.conn.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
        counts: dict[str, int] = {}
        for kind, reason, n in self.conn.execute(
            "SELECT kind, reason, n FROM identity_counts ORDER BY kind, reason"
        ):
            counts[f"{kind}:{reason}" if reason else kind] = n
        return {"offset": offset[0] if offset else 0, "identity_changes": counts}


def _event(
    ts: int, seq: int, type_: str, name: str | None, data: bytes | None, key: str
) -> dict[str, Any]:
    field = "traits" if type_ in ("identify", "group") else "properties"
    return {
        "seq": seq,
        "timestamp": ts,
        "type": type_,
        "event": name,
        "anonymous_id": key[2:] if key.startswith("a:") else None,
        field: orjson.loads(data) if data else {},
    }


def _open(keys: KeyRing, sealed: bytes | None) -> bytes | None:
    return keys.open(sealed, crypto.TIMELINE) if sealed else None
