"""Carrying out one erasure, in recorded steps that a restarted worker resumes.

1. planned: the log is applied up to its head (`catch_up`), so that the persons, identifiers
   and browsers to erase are worked out (plan.py) from the identity graph itself, and kept
   with the request; what the collector accepts after that is the suppression list's;
2. suppressed: their identifiers join the suppression list in events.db, so the collector drops
   their late events from here on;
3. log_erased: their events and refused events are deleted from events.db (first, a browser
   that an identify accepted since the plan names as theirs alone is queued for an erasure
   of its own: that identify goes here, and nothing else would tie the browser to them);
4. state_erased: one state.db transaction deletes their identity-graph rows, timeline rows,
   household models and alerts, every other row keyed by their person ids, and their keys
   (crypto-shredding), removes their email from another person's identify that carried it,
   records the audit entry and clears the plan;
5. checkpointed: both databases' WALs are checkpointed and truncated, so no old page image of
   the erased rows is left in a -wal file.
Each step is idempotent, so a crash between a step's work and its record only repeats it.
`secure_delete` is on for every connection that deletes here: freed cells and pages are zeroed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson

from bond.ids import clean_id, normalize_email
from bond.logs import log
from bond.storage.eventlog import SqliteEventLog
from bond.storage.sqlite import write_transaction
from engine.alerts import outbox
from engine.households import store as households
from engine.privacy import audit, crypto, requests
from engine.privacy.keys import KeyRing
from engine.privacy.plan import Plan, held_by_identified, make_plan
from engine.privacy.suppression import SuppressionList, forms
from engine.privacy.tables import has_table, other_person_tables
from engine.store import erased_from_map

STEPS = ("queued", "planned", "suppressed", "log_erased", "state_erased", "checkpointed")
# A test-only fault point: the process exits hard right after committing this step.
FAULT_ENV = "BOND_FAULT_ERASURE_AFTER"
CHECKPOINT_TRIES = 50
UNAPPLIED_CHUNK = 5_000
# Who asked, in the audit log, for the erasure of a browser found by its suppressed identify.
LATE_IDENTIFY = "bond:identified-after-plan"


def asked_forms(kind: str, value: str) -> list[tuple[str, str]]:
    """The identifiers a request names: an email, a user id, (for the CLI) either, or (for the
    worker, see Worker._unsuppressed) a browser."""
    if kind == "email":
        email = normalize_email(value)
        return [("email", email)] if email else []
    if kind in ("user_id", "anonymous_id"):
        clean = clean_id(value)
        return [(kind, clean)] if clean else []
    return [f for f in forms(value) if f[0] != "anonymous_id"]


class Eraser:
    def __init__(self, conn: sqlite3.Connection, log_: SqliteEventLog, keys: KeyRing) -> None:
        self.conn = conn
        self.log = log_
        self.keys = keys
        # Whoever opened the connection (the worker, `bond erase`), what is deleted or
        # overwritten here, the request's identifier and plan included, is zeroed on disk.
        conn.execute("PRAGMA secure_delete = ON")

    def run(self, request: requests.Request, catch_up: Callable[[], bool]) -> bool:
        """Carry the request out from its last recorded step; False when `catch_up` was
        stopped before the log's head (the request stays queued)."""
        done = STEPS.index(request.step)
        plan = Plan.from_json(request.plan) if request.plan else None
        if done < STEPS.index("planned") or plan is None:
            if not catch_up():
                return False
            plan = make_plan(self.conn, self.keys, asked_forms(request.kind, request.value or ""))
            self._advance(request, "planned", plan)
        if done < STEPS.index("suppressed"):
            key = self.log.suppression_key()
            plan.counts["suppressed_identifiers"] = self.log.suppress(
                crypto.blind(key, kind, value) for kind, value in plan.suppressed()
            )
            self._advance(request, "suppressed", plan)
        if done < STEPS.index("log_erased"):
            self._queue_unapplied_browsers()
            events, rejected = self.log.erase(plan.log_match(), plan.rejected_needles())
            plan.counts["log_events"] = events
            plan.counts["rejected_events"] = rejected
            self._advance(request, "log_erased", plan)
        if done < STEPS.index("state_erased"):
            self._erase_state(request, plan)
        self._checkpoint(request)
        return True

    def _queue_unapplied_browsers(self) -> None:
        """Queue the browsers that identifies accepted since the plan name as only this
        person's: the log's erasure is about to delete those identifies by their email or
        user id, and nothing would tie the browsers' other events to the person any more.

        What is read is the log past the worker's offset up to its head as it is now: the
        events accepted since the plan (the worker had just caught up), or, when resuming
        after a crash, those accepted while nothing ran.
        """
        row = self.conn.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
        after, head = (int(row[0]) if row else 0), self.log.head()
        suppression = SuppressionList(self.log)  # holds this person's identifiers by now
        claimed: set[str] = set()
        while after < head:
            events = self.log.read_after(after, UNAPPLIED_CHUNK)
            if not events:
                break
            claimed |= suppression.split([e for e in events if e.seq <= head])[2]
            after = events[-1].seq
        queue_browsers(self.conn, claimed)

    def _advance(self, request: requests.Request, step: str, plan: Plan) -> None:
        with self._transaction():
            requests.advance(self.conn, request.id, step, plan.to_json())
        _fault_point(step)

    def _erase_state(self, request: requests.Request, plan: Plan) -> None:
        with self._transaction():
            mentions = _erase_mentions(self.conn, self.keys, plan)
            erased = {**plan.counts, **erase_state(self.conn, self.keys, plan), **mentions}
            counts = {name: n for name, n in erased.items() if n}
            result = {"found": plan.found, "persons": len(plan.persons), "counts": counts}
            audit.record(
                self.conn,
                "erase",
                requested_by=request.requested_by,
                counts=counts,
                request_id=request.id,
                requested_at=request.requested_at,
            )
            requests.settle(self.conn, request.id, "state_erased", result)
        _fault_point("state_erased")
        log("erasure_done", request=request.id, found=plan.found, persons=len(plan.persons))

    def _checkpoint(self, request: requests.Request) -> None:
        # A reader in the middle of a transaction keeps old frames alive; it finishes quickly.
        for _ in range(CHECKPOINT_TRIES):
            state = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            if state and self.log.checkpoint():
                break
            time.sleep(0.1)
        else:
            log("erasure_checkpoint_incomplete", request=request.id)
        with self._transaction():
            requests.close(self.conn, request.id, "checkpointed")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with write_transaction(self.conn):
                yield
        except BaseException:
            self.keys.reset()  # its cache may hold keys the transaction made
            raise


def queue_browsers(conn: sqlite3.Connection, claimed: set[str]) -> int:
    """Queue the erasure of browsers an erased person identified on after their plan (see
    SuppressionList.split), but not of one someone identified holds; returns how many."""
    queued = sorted(a for a in claimed if not held_by_identified(conn, a))
    if queued:
        with write_transaction(conn):
            for anonymous_id in queued:
                requests.enqueue(conn, "anonymous_id", anonymous_id, LATE_IDENTIFY)
        log("erasure_queued_for_browsers", browsers=len(queued))
    return len(queued)


def erase_state(conn: sqlite3.Connection, keys: KeyRing, plan: Plan) -> dict[str, int]:
    """Delete the plan's persons from state.db (in the caller's transaction); rows per kind."""
    persons = plan.persons
    if not persons:
        return {}
    counts = {"timeline_resealed": _reseal_bystanders(conn, keys, plan)}
    counts["timeline_events"] = sum(
        conn.execute(
            "DELETE FROM timeline WHERE browser_id = ? AND ts >= ? AND ts < ?",
            (browser_id, start, end),
        ).rowcount
        for _s, browser_id, _key, start, end in plan.segments
    )
    _raise_floors(conn)
    erased_from_map(conn, persons, plan.browsers, {s[1] for s in plan.shared()})
    counts["segments_handed_to_anonymous"] = _hand_over_shared(conn, keys, plan)
    whole = plan.browsers
    counts["segments"] = _delete_in(conn, "segments", "browser_id", whole)
    counts["browsers"] = _delete_in(conn, "browsers", "id", whole)
    counts["identifiers"] = _delete_in(conn, "identifier_index", "person_id", persons)
    counts["identity_events"] = _delete_in(conn, "identity_events", "person_id", persons)
    # Another person's refusal that names them keeps its record, without the link.
    marks = ",".join("?" * len(persons))
    conn.execute(
        f"UPDATE identity_events SET other_person_id = NULL WHERE other_person_id IN ({marks})",
        persons,
    )
    counts["persons"] = _delete_in(conn, "persons", "id", persons)
    counts["keys"] = keys.shred(persons)
    if has_table(conn, "households_models"):
        counts.update(households.erase_persons(conn, persons))
    if has_table(conn, "alert_outbox"):
        counts["alerts"] = outbox.erase_persons(conn, persons)
    for table in other_person_tables(conn):
        counts[table] = _delete_in(conn, table, "person_id", persons)
    return {name: n for name, n in counts.items() if n}


def _erase_mentions(conn: sqlite3.Connection, keys: KeyRing, plan: Plan) -> dict[str, int]:
    """Another person's identify that carried their email: its timeline row, and the email
    trait it gave that person, go (the log's copy went by the email with the log's step)."""
    emails = set(plan.emails) | {v for k, v in plan.asked if k == "email"}
    rows = traits = 0
    for person_id in sorted({p for p, _seq in plan.mentions}):
        seqs = [seq for p, seq in plan.mentions if p == person_id]
        deleted = conn.execute(
            "DELETE FROM timeline WHERE browser_id IN "
            "(SELECT browser_id FROM segments WHERE person_id = ?) "
            f"AND seq IN ({','.join('?' * len(seqs))})",
            [person_id, *seqs],
        ).rowcount
        rows += deleted
        conn.execute(
            "UPDATE persons SET event_count = max(event_count - ?, 0) WHERE id = ?",
            (deleted, person_id),
        )
        row = conn.execute("SELECT traits FROM persons WHERE id = ?", (person_id,)).fetchone()
        sealed = keys.open(row[0], crypto.TRAITS) if row and row[0] else None
        held = orjson.loads(sealed) if sealed else {}
        email = held.get("email")
        if email and normalize_email(email[0]) in emails:
            del held["email"]
            traits += 1
            conn.execute(
                "UPDATE persons SET traits = ? WHERE id = ?",
                (keys.seal(person_id, orjson.dumps(held), crypto.TRAITS), person_id),
            )
    keys.flush()
    return {"timeline_mentions": rows, "traits_mentions": traits}


def _reseal_bystanders(conn: sqlite3.Connection, keys: KeyRing, plan: Plan) -> int:
    """Move rows that are someone else's now but were sealed with a key about to be shredded.

    On a shared browser, events applied before the second login was known were sealed with the
    first person's key and then handed over by the split; they must stay readable.
    """
    erased: dict[int, list[tuple[int, int]]] = {}
    for _s, browser_id, _key, start, end in plan.segments:
        erased.setdefault(browser_id, []).append((start, end))
    headers = [crypto.header(p) for p in plan.persons]
    updates = []
    for first in range(0, len(headers), 500):
        chunk = headers[first : first + 500]
        for browser_id, ts, seq, data in conn.execute(
            "SELECT browser_id, ts, seq, data FROM timeline "
            f"WHERE substr(data, 1, {crypto.HEADER_BYTES}) IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall():
            if any(start <= ts < end for start, end in erased.get(browser_id, ())):
                continue
            owner = conn.execute(
                "SELECT person_id FROM segments WHERE browser_id = ? AND start_ts <= ? "
                "ORDER BY start_ts DESC LIMIT 1",
                (browser_id, ts),
            ).fetchone()[0]
            plain = keys.open(data, crypto.TIMELINE)
            if plain is not None:
                sealed = keys.seal(owner, plain, crypto.TIMELINE)
                updates.append((sealed, browser_id, ts, seq))
    conn.executemany(
        "UPDATE timeline SET data = ? WHERE browser_id = ? AND ts = ? AND seq = ?", updates
    )
    keys.flush()
    return len(updates)


def _raise_floors(conn: sqlite3.Connection) -> None:
    """Ids of rows about to be deleted are never handed out again (see IdentityStore)."""
    for table in ("persons", "segments", "browsers"):
        conn.execute(
            "INSERT INTO id_floor (name, next) "
            f"SELECT ?, coalesce(max(id), 0) + 1 FROM {table} WHERE true "
            "ON CONFLICT (name) DO UPDATE SET next = max(next, excluded.next)",
            (table,),
        )


def _hand_over_shared(conn: sqlite3.Connection, keys: KeyRing, plan: Plan) -> int:
    """Give their ranges of a shared browser to a new anonymous person with no history.

    The browser's other owner keeps their own ranges; a late anonymous event from the erased
    person's time on that browser lands with nobody identifiable rather than with the other
    owner.
    """
    shared = plan.shared()
    for segment_id, _b, _key, _start, _end in shared:
        person_id = int(
            conn.execute(
                "SELECT max(coalesce((SELECT max(id) FROM persons), 0) + 1, "
                "(SELECT next FROM id_floor WHERE name = 'persons'))"
            ).fetchone()[0]
        )
        keys.create(person_id)
        conn.execute(
            "INSERT INTO persons (id, merged_into, identified, first_seen, last_seen, "
            "event_count, traits) VALUES (?, NULL, 0, NULL, NULL, 0, ?)",
            (person_id, keys.seal(person_id, b"{}", crypto.TRAITS)),
        )
        conn.execute("UPDATE segments SET person_id = ? WHERE id = ?", (person_id, segment_id))
    keys.flush()
    return len(shared)


def _delete_in(conn: sqlite3.Connection, table: str, column: str, ids: list[int]) -> int:
    deleted = 0
    for first in range(0, len(ids), 10_000):
        chunk = ids[first : first + 10_000]
        marks = ",".join("?" * len(chunk))
        deleted += conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk).rowcount
    return deleted


def _fault_point(step: str) -> None:
    if os.environ.get(FAULT_ENV) == step:
        os._exit(70)


def run_pending(
    conn: sqlite3.Connection, log_: SqliteEventLog, keys: KeyRing, catch_up: Callable[[], bool]
) -> list[int]:
    """Carry out every queued or interrupted erasure, oldest first; returns their ids.

    The caller must be the only writer of the identity state (the worker between batches, or
    `bond erase` holding the worker lock) and drop its caches afterwards. `catch_up` applies
    the log up to its head before each plan, with caches valid after the erasures before it;
    it returns False when stopped short. Requests queued meanwhile (by `catch_up` itself) are
    carried out in turn.
    """
    done: list[int] = []
    while pending := requests.unfinished(conn):
        if not Eraser(conn, log_, keys).run(pending[0], catch_up):
            break
        done.append(pending[0].id)
    return done
