"""What an erasure will remove, worked out once from the identity state and then kept.

The persons: everyone found by the identifier asked for, and every anonymous person folded
into them (their keys sealed part of the survivor's history). Their browsers: a browser whose
every time range is theirs goes whole (and its anonymous id is suppressed); on a browser shared
with someone else (a shared computer) only their ranges go, and the other person keeps theirs.
It is worked out after the log has been applied up to its head (see erase.py), so the graph's
own rules (aliases, signed identities, shared browsers) decide whose each browser is.

The plan names identifiers in plaintext because the event log (events.db) is matched by them
after the identity state no longer knows them; it is stored with the request and cleared in the
transaction that finishes the erasure.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field

import orjson

from bond.storage.eventlog import LogMatch
from engine.privacy.keys import KeyRing
from engine.store import anonymous_key, read_identifiers

_CHUNK = 10_000


@dataclass
class Plan:
    asked: list[tuple[str, str]]  # the (kind, value) forms of the identifier asked for
    persons: list[int] = field(default_factory=list)  # roots and everyone folded into them
    roots: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    browsers: list[int] = field(default_factory=list)  # browsers that were theirs alone
    anonymous_ids: list[str] = field(default_factory=list)  # of those browsers
    # (segment id, browser id, browser key, start, end) of every range they own
    segments: list[tuple[int, int, str, int, int]] = field(default_factory=list)
    # (person, seq) of another person's identify that carried their email: the other's user id
    # won (graph.py's email_of_other_person), and the event's traits are that person's now
    mentions: list[tuple[int, int]] = field(default_factory=list)
    # rows removed by the steps done so far (kept with the plan across a crash)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.roots or self.anonymous_ids)

    def shared(self) -> list[tuple[int, int, str, int, int]]:
        whole = set(self.browsers)
        return [s for s in self.segments if s[1] not in whole]

    def suppressed(self) -> list[tuple[str, str]]:
        """Every identifier whose late events must be dropped (a browser asked for only once
        it turned out theirs alone: see make_plan)."""
        return sorted(
            {a for a in self.asked if a[0] != "anonymous_id"}
            | {("email", e) for e in self.emails}
            | {("user_id", u) for u in self.user_ids}
            | {("anonymous_id", a) for a in self.anonymous_ids}
        )

    def log_match(self) -> LogMatch:
        emails = {v for k, v in self.asked if k == "email"} | set(self.emails)
        user_ids = {v for k, v in self.asked if k == "user_id"} | set(self.user_ids)
        ranges = [
            (key[2:], start, end)
            for _s, _b, key, start, end in self.shared()
            if key.startswith("a:")
        ]
        return LogMatch(sorted(self.anonymous_ids), sorted(user_ids), ranges, sorted(emails))

    def rejected_needles(self) -> list[str]:
        """Text whose presence in a refused event's body ties it to the person.

        A refused body is kept as the client sent it, so an id is looked for in each way
        clients write it: compact (browsers, orjson) or with Python's `": "` separator
        (segment-analytics-python), and as a bare number when it is one.
        """
        match = self.log_match()
        fragments = [
            fragment
            for key in ("userid", "previousid")
            for user_id in match.user_ids
            for fragment in _id_fragments(key, user_id)
        ]
        fragments += [
            fragment
            for key in ("anonymousid", "previousid")
            for anonymous_id in match.anonymous_ids
            for fragment in _id_fragments(key, anonymous_id)
        ]
        return [*match.needles, *fragments]

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @staticmethod
    def from_json(raw: bytes) -> Plan:
        data = orjson.loads(raw)
        data["asked"] = [tuple(a) for a in data["asked"]]
        data["segments"] = [tuple(s) for s in data["segments"]]
        data["mentions"] = [tuple(m) for m in data.get("mentions", [])]
        return Plan(**data)


def _id_fragments(key: str, value: str) -> list[str]:
    """`"key":value` as it can appear in JSON text, lowercased like the bodies it is matched in."""
    values = [orjson.dumps(value.lower()).decode()]
    if value.isascii() and value.isdigit():
        # A number ends where the next member or the object does; "42" must not find 421.
        values += [f"{value}{end}" for end in (",", "}", " ", "\n")]
    return [f'"{key}"{separator}{text}' for separator in (":", ": ") for text in values]


def make_plan(conn: sqlite3.Connection, keys: KeyRing, asked: list[tuple[str, str]]) -> Plan:
    plan = Plan(asked=asked)
    roots: set[int] = set()
    for kind, value in asked:
        if kind == "anonymous_id":
            # A browser an erased person identified on after their plan (the worker found it
            # by its suppressed identify): theirs unless someone identified holds it now.
            owners = _owners(conn, value)
            if owners is None:
                plan.anonymous_ids.append(value)
            elif not held_by_identified(conn, value):
                roots |= owners
            continue
        holder = _holder(conn, keys, kind, value)
        if holder is not None:
            roots.add(_root(conn, holder))
    return _fill(conn, keys, plan, roots)


def held_by_identified(conn: sqlite3.Connection, anonymous_id: str) -> bool:
    """Whether someone identified owns a range of this browser (it is theirs, not an erased
    person's, whatever a refused identify on it said)."""
    owners = _owners(conn, anonymous_id)
    return bool(owners) and _identified(conn, owners or set())


def _owners(conn: sqlite3.Connection, anonymous_id: str) -> set[int] | None:
    """The persons owning a browser's ranges; None when state.db does not know the browser."""
    row = conn.execute(
        "SELECT id FROM browsers WHERE key = ?", (anonymous_key(anonymous_id),)
    ).fetchone()
    if row is None:
        return None
    return {
        _root(conn, int(r[0]))
        for r in conn.execute("SELECT person_id FROM segments WHERE browser_id = ?", (row[0],))
    }


def _identified(conn: sqlite3.Connection, persons: set[int]) -> bool:
    marks = ",".join("?" * len(persons))
    row = conn.execute(
        f"SELECT max(identified) FROM persons WHERE id IN ({marks})", sorted(persons)
    ).fetchone()
    return bool(row[0])


def _holder(conn: sqlite3.Connection, keys: KeyRing, kind: str, value: str) -> int | None:
    """The person an identifier is indexed to, as the worker last merged it (not the root)."""
    row = conn.execute(
        "SELECT person_id FROM identifier_index WHERE kind = ? AND digest = ?",
        (kind, keys.blind(kind, value)),
    ).fetchone()
    return int(row[0]) if row else None


def plan_for_person(conn: sqlite3.Connection, keys: KeyRing, person_id: int) -> Plan:
    """Everything held about one person, found by id (for an export)."""
    return _fill(conn, keys, Plan(asked=[]), {_root(conn, person_id)})


def _fill(conn: sqlite3.Connection, keys: KeyRing, plan: Plan, roots: set[int]) -> Plan:
    plan.roots = sorted(roots)
    plan.persons = sorted(_folded_into(conn, roots))
    for person_id in plan.persons:
        for kind, value in read_identifiers(conn, keys, person_id):
            (plan.user_ids if kind == "user_id" else plan.emails).append(value)
    _browsers(conn, plan)
    _mentions(conn, plan)
    return plan


def _root(conn: sqlite3.Connection, person_id: int) -> int:
    while True:
        row = conn.execute("SELECT merged_into FROM persons WHERE id = ?", (person_id,)).fetchone()
        if row is None or row[0] is None:
            return person_id
        person_id = int(row[0])


def _folded_into(conn: sqlite3.Connection, roots: set[int]) -> set[int]:
    everyone, frontier = set(roots), sorted(roots)
    while frontier:
        found: list[int] = []
        for first in range(0, len(frontier), _CHUNK):
            chunk = frontier[first : first + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found += [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM persons WHERE merged_into IN ({marks})", chunk
                )
            ]
        frontier = [p for p in found if p not in everyone]
        everyone.update(frontier)
    return everyone


def _browsers(conn: sqlite3.Connection, plan: Plan) -> None:
    if not plan.roots:
        return
    marks = ",".join("?" * len(plan.roots))
    owned = conn.execute(
        "SELECT s.id, s.browser_id, b.key, s.start_ts, s.end_ts FROM segments s "
        f"JOIN browsers b ON b.id = s.browser_id WHERE s.person_id IN ({marks}) "
        "ORDER BY s.browser_id, s.start_ts",
        plan.roots,
    ).fetchall()
    plan.segments = [tuple(r) for r in owned]
    mine = set(plan.roots)
    for browser_id, key in sorted({(r[1], r[2]) for r in owned}):
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT person_id FROM segments WHERE browser_id = ?", (browser_id,)
            )
        }
        if owners <= mine:
            plan.browsers.append(browser_id)
            if key.startswith("a:"):
                plan.anonymous_ids.append(key[2:])


def _mentions(conn: sqlite3.Connection, plan: Plan) -> None:
    mine = set(plan.persons)
    for first in range(0, len(plan.persons), _CHUNK):
        chunk = plan.persons[first : first + _CHUNK]
        plan.mentions += [
            (root, int(seq))
            for person_id, seq in conn.execute(
                "SELECT person_id, seq FROM identity_events WHERE reason = ? "
                f"AND other_person_id IN ({','.join('?' * len(chunk))})",
                ["email_of_other_person", *chunk],
            )
            if (root := _root(conn, int(person_id))) not in mine
        ]
