"""`bond worker`: apply the event log to the identity state, one transaction per batch.

The offset lives in state.db and moves in the same transaction as the state (and the hooks'
writes) it produced, so a crash or kill -9 at any point neither loses nor re-applies an event.

A write the disk refuses (full, over a quota) rolls its batch back like a crash would; the
worker says so once, waits, and applies the batch again from its offset once there is room,
rather than exit and be restarted into the same refusal by its service manager. A disk full at
start, with no room to open the databases, is waited out the same way.
"""

from __future__ import annotations

import gc
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import FrameType
from typing import Any

import orjson

from bond.config import Config
from bond.errors import StorageError
from bond.logs import log
from bond.outage import Outage
from bond.storage.dirlock import WORKER, holding
from bond.storage.eventlog import SqliteEventLog, StoredEvent
from bond.storage.sqlite import connect, data_version, rollback
from engine.claims import ClaimBackfill
from engine.graph import IdentityGraph
from engine.hooks import AppliedEvent, Hook
from engine.privacy.erase import queue_browsers, run_pending
from engine.privacy.retention import Retention
from engine.privacy.schema import migrate_privacy
from engine.privacy.suppression import SuppressionList
from engine.schema import migrate_identity
from engine.store import Browser, IdentityStore, anonymous_key, user_key
from engine.verification import Proof, migrate_verification, proof, record

# How long one wait for new events lasts; a commit ends it at once (the wait starts from the
# version read before the last look at the log, so none is missed), this only paces the loop.
IDLE_WAIT_S = 0.5
PROGRESS_EVERY_S = 10.0
# SQLite's page cache for state.db (the default 2 MiB makes index inserts go to disk pages).
STATE_CACHE_KIB = 64 * 1024
# A batch rewrites pages all over the timeline's index, more than SQLite's default 1,000-page
# trigger; a checkpoint then ran inside every commit. Copied every 10,000 pages (40 MiB of WAL),
# a page rewritten by many batches is copied once. Erasures still truncate the WAL at once.
CHECKPOINT_PAGES = 10_000
# After a write the disk refused, the first pause before trying again, and the longest.
RETRY_S = (0.5, 10.0)
_STOP_CHECK_S = 0.1  # how soon a pause ends once the worker is asked to stop
# SQLite's answers that the disk takes no more for now (full, over a quota or a file-size
# limit, failing) or another process holds the write lock: waited out. Anything else stops
# the worker, as a bug should.
_PASSING = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY})
_EMPTY: dict[str, Any] = {}
_new_tuple = tuple.__new__


def open_state(config: Config) -> sqlite3.Connection:
    # synchronous=NORMAL: a power cut may lose the last batches, but the offset goes back with
    # them and they are applied again from the log, so nothing is lost or doubled.
    conn = connect(config.state_db, durable=False)
    conn.execute(f"PRAGMA cache_size = -{STATE_CACHE_KIB}")
    # Freed cells and pages are zeroed, so an erased or replaced row leaves no bytes behind.
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    migrate_identity(conn)
    migrate_privacy(conn)
    migrate_verification(conn)
    return conn


class Worker:
    def __init__(self, config: Config, hooks: Sequence[Hook] = ()) -> None:
        self.batch_size = config.engine.batch_size
        self.hooks = list(hooks)
        self.log = SqliteEventLog(config.events_db)
        self.conn = open_state(config)
        for hook in self.hooks:
            hook.migrate(self.conn)
        self.store = IdentityStore(self.conn)
        self.graph = IdentityGraph(self.store, max_user_ids=config.engine.max_user_ids_per_person)
        self.claims = ClaimBackfill(self.conn, self.store, config.events_db)
        self.offset = self._load_offset()
        self.applied_total = 0
        self._stopping = False
        self.suppression = SuppressionList(self.log)
        self.retention = Retention(config.engine.retention_days)
        self._erasures_queued = False  # by this worker, which data_version does not show
        self._seen = 0  # state.db's data_version when erasures were last looked for
        self._outage = Outage("worker_storage")
        self._retry_s = RETRY_S[0]

    def _load_offset(self) -> int:
        row = self.conn.execute("SELECT seq FROM engine_offset WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def run_once(self) -> int:
        """Apply the next batch after the offset; returns how many events it held (or, while an
        older state's claims are backfilled, how many timeline rows that step read, at least 1)."""
        if self.claims.pending:
            # Before any new event, so that no split misses a claim; each step is bounded.
            return max(self.claims.step(), 1)
        # A batch allocates tens of thousands of short-lived objects (from reading the log on)
        # but no reference cycles; the cyclic collector would walk the whole in-memory cache
        # several times per batch.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._batch()
        finally:
            if collecting:
                gc.enable()

    def _batch(self) -> int:
        events = self.log.read_after(self.offset, self.batch_size)
        if not events:
            return 0
        kept = self._unsuppressed(events)
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if kept:
                    self._apply(kept)
                conn.execute(
                    "INSERT OR REPLACE INTO engine_offset (id, seq) VALUES (1, ?)",
                    (events[-1].seq,),
                )
                conn.execute("COMMIT")
            except BaseException:
                self.store.reset()  # its cache holds the batch's changes: read them again
                rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"cannot apply events to the identity state: {exc}") from exc
        finally:
            self.graph.changes = []
        self.offset = events[-1].seq
        self.applied_total += len(events)
        return len(events)

    def _unsuppressed(self, events: list[StoredEvent]) -> list[StoredEvent]:
        """Drop events of erased persons the collector accepted before it knew of the erasure.

        A browser such an event names as only theirs (an identify from a new browser) is
        queued for erasure before the event goes, so its anonymous events go too and a crash
        in between loses neither: the erasure plans after applying the log, and finds the
        browser's events stitched to nobody.
        """
        kept, dropped, claimed = self.suppression.split(events)
        if claimed and queue_browsers(self.conn, claimed):
            self._erasures_queued = True
        if dropped:
            self.log.delete_seqs(dropped)
            log("suppressed_events_dropped", events=len(dropped), last_seq=events[-1].seq)
        return kept

    def run_erasures(self) -> list[int]:
        """Carry out queued erasures (between batches: the caches are dropped after each)."""
        self._erasures_queued = False
        try:
            done = run_pending(self.conn, self.log, self.store.keys, self._catch_up)
        except BaseException:
            self.store.reset()
            raise
        if done:
            self.store.reset()
            self.suppression.refresh(force=True)
        return done

    def _catch_up(self) -> bool:
        """Apply the log up to its head, so that an erasure is planned from the graph itself;
        False when the worker is stopping first (the erasure stays queued).

        The head is read once: a worker slower than ingest never reaches a moving head, and
        what arrives after it is dropped by the suppression list the erasure writes next. So
        the wait is bounded by the backlog when the erasure is taken up, which the worker
        applies in its ordinary batches and would have applied anyway.
        """
        self.store.reset()  # an erasure just before may have deleted what it caches
        self.suppression.refresh(force=True)
        head = self.log.head()
        if self.offset < head:
            log("erasure_catching_up", offset=self.offset, head=head)
        while self.offset < head:
            if self._stopping:
                return False
            if not self.run_once():
                break
        return True

    def _between_batches(self, seen: int) -> int:
        """Erasures when someone wrote to state.db since `seen`; retention when it is due."""
        version = data_version(self.conn)
        if version != seen or self._erasures_queued:
            self.run_erasures()
        if self.retention.due():
            self.retention.run(self.conn, self.log, self.offset)
        return version

    def _apply(self, events: list[StoredEvent]) -> None:
        graph, store = self.graph, self.store
        anonymous = {e.anonymous_id for e in events}
        users = {e.user_id for e in events if e.anonymous_id is None}
        store.prefetch(
            {anonymous_key(a) for a in anonymous if a} | {user_key(u) for u in users if u}
        )
        resolved: list[tuple[StoredEvent, Browser, dict[str, Any]]] = []
        proofs: list[Proof] = []
        loads, dumps, hooks, add_event = orjson.loads, orjson.dumps, self.hooks, store.add_event
        place = graph.place
        for ev in events:
            seq, _source, _message, type_, anonymous_id, user_id, name, ts, _at, _ip, _ua, raw = ev
            try:
                body = loads(raw)
            except orjson.JSONDecodeError as exc:
                body = _unreadable(seq, exc)
            traits = body.get("traits") if type_ in ("identify", "group") else None
            if type_ == "alias":
                shown: object = {"previousId": body.get("previousId")}
            else:
                shown = body.get("properties") if traits is None else traits
            claim = 0
            if user_id is None and anonymous_id and type_ != "identify":
                browser, person = place(anonymous_id, ts)
            else:
                browser, person, claims = graph.apply(
                    seq,
                    type_,
                    anonymous_id,
                    user_id,
                    ts,
                    traits if type_ == "identify" and isinstance(traits, dict) else _EMPTY,
                    body.get("previousId") if type_ == "alias" else None,
                )
                if claims and anonymous_id:
                    claim = person.id
            # Only an event claiming an identity can carry the collector's verified marker.
            if user_id is not None or type_ == "identify":
                found = proof(ev, body)
                if found is not None:
                    proofs.append(found)
            # The few fields a timeline shows, copied once so reads never touch the event log.
            try:
                data = dumps(shown) if isinstance(shown, dict) else b"{}"
            except TypeError as exc:  # nested past what orjson writes
                data, body = b"{}", _unreadable(seq, exc)
            add_event(seq, browser.id, ts, type_, name, data, person.id, claim)
            if hooks:
                resolved.append((ev, browser, body))
        store.flush()
        changes = graph.changes
        if changes:
            self.conn.executemany(
                "INSERT INTO identity_events (kind, person_id, other_person_id, reason, "
                "anonymous_events_stitched, browsers_stitched, first_seen, at, seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                changes,
            )
            self.conn.executemany(
                "INSERT INTO identity_counts (kind, reason, n) VALUES (?, ?, 1) "
                "ON CONFLICT (kind, reason) DO UPDATE SET n = n + 1",
                [(c.kind, c.reason or "") for c in changes],
            )
            refusals = Counter(c.reason for c in changes if c.kind == "refused")
            if refusals:
                log("identity_refused", reasons=dict(refusals), last_seq=events[-1].seq)
        if proofs:
            record(self.conn, store, proofs)
        if self.hooks:
            applied = self._applied(resolved)
            for hook in self.hooks:
                for change in changes:
                    hook.on_identity(self.conn, change)
                hook.on_events(self.conn, applied)

    def _applied(
        self, resolved: list[tuple[StoredEvent, Browser, dict[str, Any]]]
    ) -> list[AppliedEvent]:
        # Resolved after the whole batch, so an event followed by its identify in the same
        # batch is reported as the identified person's.
        persons, person = self.store.persons, self.store.person
        applied: list[AppliedEvent] = []
        append = applied.append
        for ev, browser, body in resolved:
            seq, source, _, type_, anonymous_id, user_id, name, ts, received, _, agent, _ = ev
            segments = browser.segments
            owner_id = (segments[0] if len(segments) == 1 else browser.segment_at(ts)).person_id
            owner = persons.get(owner_id) or person(owner_id)
            properties, traits, context = (
                body.get("properties"),
                body.get("traits"),
                body.get("context"),
            )
            # tuple.__new__ skips NamedTuple's generated __new__, a Python call as costly again.
            append(
                _new_tuple(
                    AppliedEvent,
                    (
                        seq,
                        owner_id,
                        bool(owner.user_ids or owner.emails),
                        source,
                        type_,
                        name,
                        anonymous_id,
                        user_id,
                        ts,
                        received,
                        agent,
                        properties if isinstance(properties, dict) else {},
                        traits if isinstance(traits, dict) else {},
                        context if isinstance(context, dict) else {},
                    ),
                )
            )
        return applied

    def run(self, beside: AbstractContextManager[object] | None = None) -> None:
        """Follow the log until SIGTERM/SIGINT; a batch in flight is finished first.

        The caller holds the data directory's worker lock (see run_worker). `beside` (the alert
        sender) runs while the worker does.
        """
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        head = self.log.head()
        log("worker_started", offset=self.offset, head=head, hooks=[h.name for h in self.hooks])
        if self.offset > head:
            # state.db was built from another (or a since-deleted) event log: new events would
            # be skipped until the log passes the offset. Say so rather than look idle.
            log("worker_offset_ahead_of_log", offset=self.offset, head=head)
        last_progress, logged_offset = time.monotonic(), self.offset
        try:
            with beside if beside is not None else nullcontext():
                # Erasures a crash interrupted are resumed before applying more.
                while not self._stopping and not self._attempt(self.run_erasures):
                    pass
                self._seen = data_version(self.conn)
                while not self._stopping:
                    if not self._attempt(self._follow):
                        continue
                    # Only when it moved: an idle worker's line every 10 s said nothing new.
                    if time.monotonic() - last_progress > PROGRESS_EVERY_S and (
                        self.offset != logged_offset
                    ):
                        log("worker_progress", offset=self.offset, applied=self.applied_total)
                        last_progress, logged_offset = time.monotonic(), self.offset
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log("worker_stopped", offset=self.offset, applied=self.applied_total)
            self.close()

    def _follow(self) -> None:
        """Apply the next batch, or wait a moment for one; then what is due between batches."""
        version = self.log.version()
        if self.run_once() < self.batch_size and not self.claims.pending:
            self.log.wait_for_append(IDLE_WAIT_S, since=version)
        self._seen = self._between_batches(self._seen)

    def _attempt(self, step: Callable[[], object]) -> bool:
        """Run `step`; False, after a pause (longer each time in a row), when the disk refused
        a write: what the step wrote was rolled back, and it is run again."""
        try:
            step()
        except (StorageError, sqlite3.Error) as exc:
            if not _passing(exc):
                raise
            self._outage.failed(str(exc), offset=self.offset, retry_s=self._retry_s)
            self._pause(self._retry_s)
            self._retry_s = min(self._retry_s * 2, RETRY_S[1])
            return False
        self._outage.ended(offset=self.offset)
        self._retry_s = RETRY_S[0]
        return True

    def _pause(self, seconds: float) -> None:
        # In slices: a signal's handler runs during a sleep, but the sleep goes on after it.
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, _STOP_CHECK_S))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def close(self) -> None:
        self.log.close()
        self.conn.close()


def _passing(exc: Exception) -> bool:
    """Whether `exc`, or the SQLite error it was raised from, is one the worker waits out."""
    error = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _PASSING


def _unreadable(seq: int, error: Exception) -> dict[str, Any]:
    """What the worker applies of an event it cannot read: its place, not its properties.

    The collector stores events as sent without decoding them whole (see
    collector.validate.readable), so a number past a double's range (1e999) or properties nested
    past the 254 levels orjson writes can reach the log; stopping at one would stop the worker
    at that offset for good.
    """
    log("event_unreadable", seq=seq, reason=str(error)[:200])
    return {}


def run_worker(config: Config) -> None:
    from engine.alerts.sender import running_sender
    from engine.hooks import default_hooks

    # Taken before either database is opened: a second worker, refused, has touched neither,
    # and sends no alert (the sender starts within the lock).
    with holding(config.data_dir, WORKER):
        worker = _opened(config, lambda: Worker(config, default_hooks(config)))
        if worker is None:
            return
        # The sender delivers what the worker's hooks committed to the alert outbox, beside it.
        worker.run(beside=running_sender(config))


def _opened(config: Config, make: Callable[[], Worker]) -> Worker | None:
    """`make()`, made again after a pause while the disk refuses what opening the databases
    writes, as during a run; None when stopped meanwhile.

    A full disk at start is waited out only for databases that exist: without room to create
    them this is a first start, and it fails at once with the reason.
    """
    existing = config.events_db.exists() and config.state_db.exists()
    outage, retry_s = Outage("worker_storage"), RETRY_S[0]
    stopping = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda signum, frame: stopping.set()) for sig in signals}
    try:
        while True:
            try:
                worker = make()
            except (StorageError, sqlite3.Error) as exc:
                if not (existing and _passing(exc)):
                    raise
                outage.failed(str(exc), retry_s=retry_s)
                if stopping.wait(retry_s):
                    log("worker_stopped", applied=0)
                    return None
                retry_s = min(retry_s * 2, RETRY_S[1])
                continue
            outage.ended()
            return worker
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
