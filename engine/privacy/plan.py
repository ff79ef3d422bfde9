"""What an erasure will remove, worked out once from the identity state and then kept.

The persons: everyone found by the identifier asked for, and every anonymous person folded
into them (their keys sealed part of the survivor's history). Their browsers: a browser whose
every time range is theirs goes whole (and its anonymous id is suppressed); on a browser shared
with someone else (a shared computer) only their ranges go, and the other person keeps theirs.

The plan names identifiers in plaintext because the event log (events.db) is matched by them
after the identity state no longer knows them; it is stored with the request and cleared in the
transaction that finishes the erasure.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import orjson

from bond.storage.eventlog import LogMatch, StoredEvent
from engine.privacy.keys import KeyRing
from engine.privacy.suppression import email_in
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
    # rows removed by the steps done so far (kept with the plan across a crash)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.roots)

    def shared(self) -> list[tuple[int, int, str, int, int]]:
        whole = set(self.browsers)
        return [s for s in self.segments if s[1] not in whole]

    def suppressed(self) -> list[tuple[str, str]]:
        """Every identifier whose late events must be dropped."""
        return sorted(
            {*self.asked}
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
            continue
        holder = _holder(conn, keys, kind, value)
        if holder is not None:
            roots.add(_root(conn, holder))
    return _fill(conn, keys, plan, roots)


def with_unapplied(
    conn: sqlite3.Connection, keys: KeyRing, plan: Plan, events: Iterable[StoredEvent]
) -> Plan:
    """The plan grown by what the event log holds of the person beyond the worker's offset.

    A worker behind the log (a backlog, a restart) has not yet linked a browser on which the
    person just identified: its events would be applied after the erasure as an anonymous
    visitor's, their pages and products included. A browser whose unapplied events name the
    person, and nobody else, is theirs: anonymous so far in state.db (its persons join the
    plan) or not there at all (its anonymous id does). So is a user id or an email an
    unapplied identify gives them that no one holds yet, and what names them only by that
    one is theirs too, however long the chain.
    """
    known: dict[tuple[str, str], bool] = {}  # a backlog names the same people many times

    def held(kind: str, value: str) -> bool:
        if (kind, value) not in known:
            known[kind, value] = _holder(conn, keys, kind, value) is not None
        return known[kind, value]

    browsers, user_ids, emails = _named_in(plan, events, held)
    extra: set[int] = set()
    unknown: list[str] = []
    for anonymous_id in sorted(browsers):
        owners = _owners(conn, anonymous_id)
        if owners is None:
            unknown.append(anonymous_id)
        elif owners and not _identified(conn, owners - set(plan.roots)):
            extra |= owners
    if extra - set(plan.roots):
        plan = _fill(conn, keys, Plan(asked=plan.asked), set(plan.roots) | extra)
    plan.anonymous_ids += [a for a in unknown if a not in plan.anonymous_ids]
    plan.user_ids += sorted(user_ids - set(plan.user_ids))
    plan.emails += sorted(emails - set(plan.emails))
    return plan


def _named_in(
    plan: Plan, events: Iterable[StoredEvent], held: Callable[[str, str], bool]
) -> tuple[set[str], set[str], set[str]]:
    """Anonymous ids whose events name the person and no one else, and the new user ids and
    emails identifies gave them.

    As in the identity graph: an identify with their email and another person's user id is
    that person's (the user id wins), so it names someone else; one with their user id or
    email gives them the other identifier it carries, unless someone else holds it. Each
    identifier given is followed in turn, to the events that name them only by it.
    """
    user_ids = {*plan.user_ids, *(v for k, v in plan.asked if k == "user_id")}
    emails = {*plan.emails, *(v for k, v in plan.asked if k == "email")}
    known_users, known_emails = set(user_ids), set(emails)
    # Who each event names, once per (browser, user id, email): a backlog repeats them.
    claims = {
        (event.anonymous_id, event.user_id, _email_of(event))
        for event in events
        if event.user_id is not None or event.type == "identify"
    }

    def foreign(user_id: str | None) -> bool:
        return user_id is not None and user_id not in user_ids and held("user_id", user_id)

    def names_them(user_id: str | None, email: str | None) -> bool:
        return not foreign(user_id) and (
            user_id in user_ids or (email is not None and email in emails)
        )

    # An email someone else's login carries too is not given to them: its events stay.
    shared = {e for _a, u, e in claims if e is not None and foreign(u)}

    grown = True
    while grown:
        grown = False
        for _anonymous_id, user_id, email in claims:
            if not names_them(user_id, email):
                continue
            if user_id is not None and user_id not in user_ids:
                user_ids.add(user_id)
                grown = True
            if email is None or email in emails or email in shared:
                continue
            if not held("email", email):
                emails.add(email)
                grown = True
    theirs = {a for a, u, e in claims if a is not None and names_them(u, e)}
    others = {a for a, u, e in claims if a is not None and (u or e) and not names_them(u, e)}
    return theirs - others, user_ids - known_users, emails - known_emails


def _email_of(event: StoredEvent) -> str | None:
    if event.type != "identify":
        return None
    try:
        body = orjson.loads(event.body)
    except orjson.JSONDecodeError:
        return None
    return email_in(event.type, body) if isinstance(body, dict) else None


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
