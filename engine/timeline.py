"""Reading the identity state: find a person, their profile, their stitched timeline.

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
from typing import Any, NamedTuple

import orjson

from bond.ids import clean_id, normalize_email
from engine.privacy import crypto
from engine.privacy.keys import KeyRing
from engine.store import anonymous_key, read_identifiers, user_key

MAX_PAGE = 500
# SQLite's INTEGER is signed 64-bit: a larger Python int cannot even be bound to a query.
MAX_INTEGER = 2**63 - 1
# ASCII digits only, as int() would also take signs, spaces, underscores and other scripts'
# digits; at most 19 significant ones, so int() never meets its own limit on digits.
_WHOLE_NUMBER = re.compile(r"0*([0-9]{1,19})")


def whole_number(text: str) -> int | None:
    """`text` as a whole number SQLite can hold; None when it is not one."""
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None:
        return None
    number = int(match[1])
    return number if number <= MAX_INTEGER else None


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
        identifiers: dict[str, list[str]] = {"user_id": [], "email": []}
        for kind, value in read_identifiers(self.conn, keys, person_id):
            identifiers[kind].append(value)
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

    def _runs(
        self, person_id: int, columns: str, limit: int, before: Cursor | None
    ) -> list[tuple[str, list[Any]]]:
        """Per segment of the person: its browser's key and newest `limit` rows before `before`.

        `columns` start with ts and seq; each run is newest first.
        """
        segments = self.conn.execute(
            "SELECT s.browser_id, s.start_ts, s.end_ts, b.key FROM segments s "
            "JOIN browsers b ON b.id = s.browser_id WHERE s.person_id = ?",
            (person_id,),
        ).fetchall()
        runs = []
        for browser_id, start, end, key in segments:
            # seq starts at 1, so (end, 0) excludes the segment's end timestamp itself.
            bound = min(Cursor(end, 0), before) if before is not None else Cursor(end, 0)
            rows = self.conn.execute(
                f"SELECT {columns} FROM timeline "
                "WHERE browser_id = ? AND ts >= ? AND (ts, seq) < (?, ?) "
                "ORDER BY ts DESC, seq DESC LIMIT ?",
                (browser_id, start, bound.ts, bound.seq, limit),
            ).fetchall()
            runs.append((key, rows))
        return runs

    def latest_before(self, person_id: int, before: Cursor) -> Cursor | None:
        """Where the person's newest event before `before` is; no personal data is opened."""
        runs = self._runs(person_id, "ts, seq", 1, before)
        found = [Cursor(*rows[0]) for _key, rows in runs if rows]
        return max(found) if found else None

    def timeline(self, person_id: int, limit: int, before: Cursor | None = None) -> TimelinePage:
        limit = max(1, min(limit, MAX_PAGE))
        runs = [
            [(ts, seq, type_, name, data, key) for ts, seq, type_, name, data in rows]
            for key, rows in self._runs(person_id, "ts, seq, type, name, data", limit + 1, before)
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
        where, params = ["id < ?"], [before_id if before_id is not None else 2**62]
        if person_id is not None:
            where.append("(person_id = ? OR other_person_id = ?)")
            params += [person_id, person_id]
        rows = self.conn.execute(
            "SELECT id, kind, person_id, other_person_id, reason, anonymous_events_stitched, "
            "browsers_stitched, first_seen, at, seq FROM identity_events "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
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
        """
        segments = self.conn.execute(
            "SELECT s.browser_id, b.key, s.start_ts, s.end_ts FROM segments s "
            "JOIN browsers b ON b.id = s.browser_id WHERE s.person_id = ?",
            (person_id,),
        ).fetchall()
        changes = self.conn.execute(
            "SELECT at, seq FROM identity_events WHERE person_id = ? ORDER BY id DESC LIMIT ?",
            (person_id, max_changes),
        ).fetchall()
        ranges = []
        for browser_id, key, start, end in segments:
            if not key.startswith("a:"):
                continue  # a user id's server-side events were never anonymous
            found = [
                Cursor(at, seq)
                for at, seq in changes
                if start <= at < end
                and self.conn.execute(
                    "SELECT 1 FROM timeline WHERE browser_id = ? AND ts = ? AND seq = ?",
                    (browser_id, at, seq),
                ).fetchone()
            ]
            if not found:
                first = self.conn.execute(
                    "SELECT ts, seq, type, claim FROM timeline WHERE browser_id = ? AND ts >= ? "
                    "AND ts < ? ORDER BY ts, seq LIMIT 1",
                    (browser_id, start, end),
                ).fetchone()
                if first is not None and (first[2] == "identify" or first[3] is not None):
                    found = [Cursor(first[0], first[1])]
            ranges.append(StitchRange(key[2:], start, end, min(found) if found else None))
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
