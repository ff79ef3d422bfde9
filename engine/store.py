"""The identity graph's state: cached in memory by the worker, written back once per batch.

The worker is the only writer of `state.db`, so what it caches stays true between batches. Within
a batch every change lands in memory first and `flush` writes the dirty rows with executemany,
inside the batch's transaction; a failed batch drops the caches (`reset`) and reloads them.

What is personal is sealed on its way to disk with the owning person's key (engine/privacy):
identifiers are found through their keyed digest, traits and each event's data are sealed
once when written. The caches hold plaintext, as the process already does.
"""

from __future__ import annotations

import bisect
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.privacy import crypto
from engine.privacy.keys import KeyRing
from engine.rows import execute_rows

# The first segment of a browser covers all time before the first split, so an anonymous event
# delayed by a retry queue still lands in it however old its timestamp.
MIN_TS = -(2**62)
MAX_TS = 2**62

# SQLite allows 32,766 parameters per statement.
PREFETCH_CHUNK = 10_000

# Past this many cached rows, the caches are dropped after a flush (everything is on disk).
CACHE_LIMIT = 200_000


@dataclass
class Person:
    id: int
    merged_into: int | None = None
    user_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    first_seen: int | None = None
    last_seen: int | None = None
    event_count: int = 0
    # key -> [value, timestamp of the identify that set it]: last write by time wins per key.
    traits: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def identified(self) -> bool:
        return bool(self.user_ids or self.emails)

    def saw(self, ts: int) -> None:
        first, last = self.first_seen, self.last_seen
        if first is None or ts < first:
            self.first_seen = ts
        if last is None or ts > last:
            self.last_seen = ts

    def set_traits(self, traits: dict[str, Any], at: int) -> None:
        for key, value in traits.items():
            current = self.traits.get(key)
            if current is None or at >= current[1]:
                self.traits[key] = [value, at]


@dataclass
class Segment:
    id: int
    browser_id: int
    start_ts: int
    end_ts: int
    person_id: int


@dataclass
class Browser:
    id: int
    key: str
    segments: list[Segment]  # ordered by start_ts, contiguous from MIN_TS to MAX_TS

    def segment_at(self, ts: int) -> Segment:
        if len(self.segments) == 1:
            return self.segments[0]
        starts = [s.start_ts for s in self.segments]
        return self.segments[bisect.bisect_right(starts, ts) - 1]


def anonymous_key(anonymous_id: str) -> str:
    return "a:" + anonymous_id


def user_key(user_id: str) -> str:
    """The browser of a user id's server-side events (those sent without an anonymous id)."""
    return "u:" + user_id


class IdentityStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.keys = KeyRing(conn)
        self.reset()

    def reset(self) -> None:
        self.keys.reset()
        self.browsers: dict[str, Browser] = {}
        # Keys a prefetch found not to exist yet: no query needed to learn they are new.
        self.absent: set[str] = set()
        self.browsers_by_id: dict[int, Browser] = {}
        self.persons: dict[int, Person] = {}
        self.identifiers: dict[tuple[str, str], int | None] = {}
        self.dirty_persons: set[int] = set()
        self.dirty_segments: dict[int, Segment] = {}
        self.new_browsers: list[Browser] = []
        self.new_identifiers: list[tuple[str, bytes, int, int, bytes]] = []
        # (browser_id, ts, seq, type, name) and (owner, data), sealed together at flush.
        self.timeline: list[tuple[int, int, int, str, str | int, int]] = []
        self.timeline_data: list[tuple[int, bytes]] = []
        # Persons whose traits or identity changed need their whole row written; the others
        # (most of a batch) only had their counters move.
        self.rewrite_persons: set[int] = set()
        # Persons whose identity-map rows changed with none of their segments written: they
        # became identified, or their user ids changed (see map_seq in engine/schema.py).
        self.map_changed: set[int] = set()
        self.next_person = self._next_id("persons")
        self.next_segment = self._next_id("segments")
        self.next_browser = self._next_id("browsers")

    def _next_id(self, table: str) -> int:
        # An erasure may have deleted the newest rows; their ids are never handed out again.
        return int(
            self.conn.execute(
                f"SELECT max(coalesce((SELECT max(id) FROM {table}), 0) + 1, "
                "coalesce((SELECT next FROM id_floor WHERE name = ?), 0))",
                (table,),
            ).fetchone()[0]
        )

    # -- reads through the cache ------------------------------------------------------------

    def browser(self, key: str) -> Browser | None:
        browser = self.browsers.get(key)
        if browser is not None or key in self.absent:
            return browser
        row = self.conn.execute("SELECT id FROM browsers WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        segments = [
            Segment(*r)
            for r in self.conn.execute(
                "SELECT id, browser_id, start_ts, end_ts, person_id FROM segments "
                "WHERE browser_id = ? ORDER BY start_ts",
                (row[0],),
            )
        ]
        browser = Browser(row[0], key, segments)
        self._cache_browser(browser)
        return browser

    def prefetch(self, keys: set[str]) -> None:
        """Load a batch's browsers in two queries rather than two per browser."""
        cached = self.browsers
        missing = [k for k in keys if k not in cached]
        self.absent = set(missing)
        for first in range(0, len(missing), PREFETCH_CHUNK):
            chunk = missing[first : first + PREFETCH_CHUNK]
            marks = ",".join("?" * len(chunk))
            found = self.conn.execute(
                f"SELECT id, key FROM browsers WHERE key IN ({marks})", chunk
            ).fetchall()
            if not found:
                continue
            browsers = {browser_id: Browser(browser_id, key, []) for browser_id, key in found}
            marks = ",".join("?" * len(browsers))
            for row in self.conn.execute(
                "SELECT id, browser_id, start_ts, end_ts, person_id FROM segments "
                f"WHERE browser_id IN ({marks}) ORDER BY browser_id, start_ts",
                list(browsers),
            ):
                browsers[row[1]].segments.append(Segment(*row))
            for browser in browsers.values():
                self._cache_browser(browser)
                self.absent.discard(browser.key)

    def browser_by_id(self, browser_id: int) -> Browser | None:
        browser = self.browsers_by_id.get(browser_id)
        if browser is not None:
            return browser
        row = self.conn.execute("SELECT key FROM browsers WHERE id = ?", (browser_id,)).fetchone()
        return self.browser(row[0]) if row else None

    def person(self, person_id: int) -> Person:
        person = self.persons.get(person_id)
        if person is not None:
            return person
        row = self.conn.execute(
            "SELECT p.merged_into, p.first_seen, p.last_seen, p.event_count, p.traits, k.key "
            "FROM persons p LEFT JOIN person_keys k ON k.person_id = p.id WHERE p.id = ?",
            (person_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no person {person_id}")
        self.keys.remember(person_id, row[5])
        traits = orjson.loads(self.keys.open(row[4], crypto.TRAITS) or b"{}")
        person = Person(person_id, row[0], [], [], row[1], row[2], row[3], traits)
        for kind, value in read_identifiers(self.conn, self.keys, person_id):
            (person.user_ids if kind == "user_id" else person.emails).append(value)
        self.persons[person_id] = person
        return person

    def find(self, person_id: int) -> int:
        """The person `person_id` now is (following merges), compressing the path it walked."""
        path = []
        person = self.person(person_id)
        while person.merged_into is not None:
            path.append(person)
            person = self.person(person.merged_into)
        for walked in path[:-1]:
            walked.merged_into = person.id
            self.changed_person(walked)
        return person.id

    def person_of(self, kind: str, value: str) -> int | None:
        key = (kind, value)
        if key in self.identifiers:
            return self.identifiers[key]
        row = self.conn.execute(
            "SELECT person_id FROM identifier_index WHERE kind = ? AND digest = ?",
            (kind, self.keys.blind(kind, value)),
        ).fetchone()
        person_id = int(row[0]) if row else None
        self.identifiers[key] = person_id
        return person_id

    def range_stats(
        self, browser_id: int, start: int, end: int
    ) -> tuple[int, int | None, int | None]:
        """(count, first ts, last ts) of a browser's events in [start, end)."""
        self._flush_timeline()
        row = self.conn.execute(
            "SELECT count(*), min(ts), max(ts) FROM timeline "
            "WHERE browser_id = ? AND ts >= ? AND ts < ?",
            (browser_id, start, end),
        ).fetchone()
        return int(row[0]), row[1], row[2]

    def next_claim(self, browser_id: int, after: int, before: int, by_other_than: int) -> int:
        """The time of a browser's first event in (after, before) that named a person other
        than `by_other_than`; `before` when there is none."""
        self._flush_timeline()
        for ts, claim in self.conn.execute(
            "SELECT ts, claim FROM timeline "
            "WHERE browser_id = ? AND ts > ? AND ts < ? AND claim IS NOT NULL ORDER BY ts",
            (browser_id, after, before),
        ):
            try:
                if self.find(claim) != by_other_than:
                    return int(ts)
            except KeyError:
                continue  # an erased person's, whose events went with them
        return before

    def seen_span(self, person_id: int) -> tuple[int | None, int | None]:
        """The first and last time of a person's events, read from their segments."""
        first: int | None = None
        last: int | None = None
        for segment in self.segments_of(person_id):
            _, low, high = self.range_stats(segment.browser_id, segment.start_ts, segment.end_ts)
            if low is not None:
                first = low if first is None else min(first, low)
            if high is not None:
                last = high if last is None else max(last, high)
        return first, last

    def segments_of(self, person_id: int) -> list[Segment]:
        self._flush_segments()
        segments: list[Segment] = []
        for segment_id, browser_id in self.conn.execute(
            "SELECT id, browser_id FROM segments WHERE person_id = ?", (person_id,)
        ).fetchall():
            browser = self.browser_by_id(browser_id)
            assert browser is not None
            segments.extend(s for s in browser.segments if s.id == segment_id)
        return segments

    # -- changes, kept in memory until flush ------------------------------------------------

    def new_person(self) -> Person:
        person = Person(self.next_person)
        self.next_person += 1
        self.persons[person.id] = person
        self.keys.create(person.id)
        self.changed_person(person)
        return person

    def new_browser(self, key: str, owner: int) -> Browser:
        browser = Browser(self.next_browser, key, [])
        self.absent.discard(key)
        self.next_browser += 1
        self.new_browsers.append(browser)
        self._cache_browser(browser)
        self.new_segment(browser, MIN_TS, MAX_TS, owner)
        return browser

    def new_segment(self, browser: Browser, start: int, end: int, owner: int) -> Segment:
        segment = Segment(self.next_segment, browser.id, start, end, owner)
        self.next_segment += 1
        browser.segments.append(segment)
        browser.segments.sort(key=lambda s: s.start_ts)
        self.dirty_segments[segment.id] = segment
        return segment

    def changed_segment(self, segment: Segment) -> None:
        self.dirty_segments[segment.id] = segment

    def changed_person(self, person: Person) -> None:
        self.dirty_persons.add(person.id)
        self.rewrite_persons.add(person.id)

    def add_identifier(self, kind: str, value: str, person: Person, at: int) -> None:
        # A new user id may be older than the one the map shows (a late event), so any counts.
        if kind == "user_id" or not person.identified:
            self.map_changed.add(person.id)
        (person.user_ids if kind == "user_id" else person.emails).append(value)
        self.identifiers[(kind, value)] = person.id
        self.new_identifiers.append(
            (
                kind,
                self.keys.blind(kind, value),
                person.id,
                at,
                self.keys.seal(person.id, value.encode(), crypto.IDENTIFIER),
            )
        )
        self.changed_person(person)

    def add_event(
        self,
        seq: int,
        browser_id: int,
        ts: int,
        type_: str,
        name: str | None,
        data: bytes,
        person_id: int,
        claim: int = 0,
    ) -> None:
        """Queue an event's timeline row; its data is sealed with the key of its owner now.

        A later merge leaves the blob sealed with that key; the key lives as long as the person
        it was folded into (see engine/privacy/keys.py). `claim` is the person the event named
        (0: an anonymous event).
        """
        # A missing name or claim goes in as 0 and is stored as NULL (see _flush_timeline):
        # sqlite3 binds an int at once but looks for an adapter for None.
        self.timeline.append((browser_id, ts, seq, type_, 0 if name is None else name, claim))
        self.timeline_data.append((person_id, data))

    # -- writing back -------------------------------------------------------------------------

    def flush(self) -> None:
        conn = self.conn
        self.keys.flush()
        self._flush_timeline()
        self._flush_segments()
        if self.new_identifiers:
            conn.executemany(
                "INSERT INTO identifier_index (kind, digest, person_id, added_at, sealed) "
                "VALUES (?, ?, ?, ?, ?)",
                self.new_identifiers,
            )
            self.new_identifiers = []
        if self.dirty_persons:
            persons = [self.persons[i] for i in self.dirty_persons]
            rewrite = self.rewrite_persons
            marked = self.map_changed
            stamp = map_stamp(conn) if marked else 0
            # `active_at` only ever goes up (see engine/schema.py): the newest last_seen yet.
            execute_rows(
                conn,
                "INSERT INTO persons (id, merged_into, identified, first_seen, last_seen, "
                "event_count, traits, active_at, map_seq) VALUES {values} "
                "ON CONFLICT (id) DO UPDATE SET "
                "merged_into = excluded.merged_into, identified = excluded.identified, "
                "first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
                "event_count = excluded.event_count, traits = excluded.traits, "
                "active_at = max(persons.active_at, excluded.active_at), "
                "map_seq = coalesce(excluded.map_seq, persons.map_seq)",
                f"(?, ?, ?, ?, ?, ?, ?, coalesce(?, {MIN_TS}), NULLIF(?, 0))",
                [
                    (
                        p.id,
                        p.merged_into,
                        int(p.identified),
                        p.first_seen,
                        p.last_seen,
                        p.event_count,
                        # Most persons never get traits: nothing to seal, nothing to hide.
                        # (A bytearray is bound without an adapter lookup, see KeyRing.seal_all.)
                        bytearray(self.keys.seal(p.id, orjson.dumps(p.traits), crypto.TRAITS))
                        if p.traits
                        else bytearray(),
                        p.last_seen,
                        stamp if p.id in marked else 0,
                    )
                    for p in persons
                    if p.id in rewrite
                ],
            )
            self.map_changed = set()
            execute_rows(
                conn,
                "WITH v (first_seen, last_seen, event_count, id) AS (VALUES {values}) "
                "UPDATE persons SET first_seen = v.first_seen, last_seen = v.last_seen, "
                "event_count = v.event_count, "
                "active_at = max(persons.active_at, coalesce(v.last_seen, persons.active_at)) "
                "FROM v WHERE persons.id = v.id",
                "(?, ?, ?, ?)",
                [
                    (p.first_seen, p.last_seen, p.event_count, p.id)
                    for p in persons
                    if p.id not in rewrite
                ],
            )
            self.dirty_persons = set()
            self.rewrite_persons = set()
        if len(self.persons) + len(self.browsers) + len(self.identifiers) > CACHE_LIMIT:
            self.reset()

    def _flush_timeline(self) -> None:
        if self.timeline:
            sealed = self.keys.seal_all(self.timeline_data, crypto.TIMELINE)
            execute_rows(
                self.conn,
                "INSERT INTO timeline (browser_id, ts, seq, type, name, claim, data) "
                "VALUES {values}",
                "(?, ?, ?, ?, NULLIF(?, 0), NULLIF(?, 0), ?)",
                [(*row, data) for row, data in zip(self.timeline, sealed, strict=True)],
            )
            self.timeline, self.timeline_data = [], []

    def _flush_segments(self) -> None:
        if self.new_browsers:
            execute_rows(
                self.conn,
                "INSERT INTO browsers (id, key) VALUES {values}",
                "(?, ?)",
                [(b.id, b.key) for b in self.new_browsers],
            )
            self.new_browsers = []
        if self.dirty_segments:
            execute_rows(
                self.conn,
                "INSERT OR REPLACE INTO segments (id, browser_id, start_ts, end_ts, person_id) "
                "VALUES {values}",
                "(?, ?, ?, ?, ?)",
                [
                    (s.id, s.browser_id, s.start_ts, s.end_ts, s.person_id)
                    for s in self.dirty_segments.values()
                ],
            )
            mark_changed(self.conn, {s.browser_id for s in self.dirty_segments.values()})
            self.dirty_segments = {}

    def _cache_browser(self, browser: Browser) -> None:
        self.browsers[browser.key] = browser
        self.browsers_by_id[browser.id] = browser


def map_stamp(conn: sqlite3.Connection) -> int:
    """The identity map's change mark for what is written now: the worker offset before this
    batch, plus one. A batch commits its offset with its changes, so a map read at offset T
    holds every change marked up to T, and a pull from T gets every one marked above (an
    erasure, committed at the offset it ran at, is marked above it: sent once more, harmless)."""
    row = conn.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
    return (int(row[0]) if row else 0) + 1


def mark_changed(conn: sqlite3.Connection, browser_ids: set[int]) -> None:
    """The next incremental identity-map pull re-sends these browsers' rows."""
    stamp = map_stamp(conn)
    execute_rows(
        conn,
        "INSERT INTO map_changes (browser_id, seq) VALUES {values} "
        "ON CONFLICT (browser_id) DO UPDATE SET seq = excluded.seq",
        "(?, ?)",
        [(browser_id, stamp) for browser_id in browser_ids],
    )


def erased_from_map(
    conn: sqlite3.Connection, persons: list[int], erased: list[int], kept: set[int]
) -> None:
    """Before an erasure deletes `persons` with the browsers `erased`, and hands their ranges of
    the browsers `kept` to someone else: the next incremental identity-map pull tells the
    consumer to delete every stream with a row of theirs, and re-sends the kept browsers."""
    stamp = map_stamp(conn)
    conn.executemany(
        "INSERT INTO map_removed (seq, erased_person_id) VALUES (?, ?)",
        [(stamp, person) for person in persons],
    )
    for first in range(0, len(erased), PREFETCH_CHUNK):
        chunk = erased[first : first + PREFETCH_CHUNK]
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM map_changes WHERE browser_id IN ({marks})", chunk)
    mark_changed(conn, kept)


def read_identifiers(
    conn: sqlite3.Connection, keys: KeyRing, person_id: int
) -> list[tuple[str, str]]:
    """A person's (kind, value) identifiers, oldest first (ties by value, as they sort)."""
    rows = conn.execute(
        "SELECT kind, added_at, sealed FROM identifier_index WHERE person_id = ?", (person_id,)
    ).fetchall()
    opened = []
    for kind, added_at, sealed in rows:
        value = keys.open(sealed, crypto.IDENTIFIER)
        if value is not None:
            opened.append((added_at, value.decode(), kind))
    return [(kind, value) for _at, value, kind in sorted(opened)]
