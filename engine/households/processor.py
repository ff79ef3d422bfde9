"""The real-time path: events in, sessions closed, models updated, conversions attributed.

Called once per worker batch inside its transaction. Everything it changes is written in that
transaction, so a rolled-back batch leaves no trace and a restart continues where the last
committed batch ended (memory.py says what is kept in memory meanwhile). Heavy work is bounded
per batch: at most `refit_budget` refits run at its end; the others stay due and run in a later
batch that touches the account. An order is judged as it would have been live whatever the
batching: sessions are closed as the stream's time passes their end, not at the end of the
batch, and a refit due on the order's account runs before the order is judged.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.account import Account
from engine.households.arrival import arrived
from engine.households.calibration import Calibration
from engine.households.drift import (
    MIN_SESSIONS,
    OWN_BROWSER,
    WARMUP,
    Change,
    newcomer_probability,
)
from engine.households.features import session_features
from engine.households.memory import Memory
from engine.households.model import DECAY
from engine.households.profiles import profiles
from engine.households.refit import Refit, refit
from engine.households.sessions import CONVERSION, SESSION_GAP_MS, Session
from engine.households.window import Recent

# Early refits matter most (cold start); later the online updates carry the model between them,
# and the change detectors and a new browser ask for a refit whenever something happens.
REFIT_AT = frozenset({6, 10, 16, 24, 32, 48, 64, 96, 128})
REFIT_EVERY = 64
NEW_DEVICE_SESSIONS = 2
NEW_DEVICE_AFTER = 8
# After a confirmed change, sessions from before it count this much in the refit.
BEFORE_CHANGE_WEIGHT = 0.3
REFIT_BUDGET = 32
# A new member not yet judged a join or not is looked at again every this many sessions of its
# own, on the labels its sessions got online, and a refit judges it once those say it joined:
# waiting for the next scheduled refit let joins go unconfirmed for weeks.
JUDGE_EVERY = 3
# A stored session's confidence is rewritten by a refit only when it moved more than this.
RELABEL_TOLERANCE = 0.01


@dataclass
class Timings:
    """Per-session model update times and refit times (seconds), for `bond simulate`."""

    updates: list[float] = field(default_factory=list)
    refits: list[float] = field(default_factory=list)


class HouseholdProcessor:
    def __init__(
        self,
        calibration: Calibration,
        *,
        refit_budget: int = REFIT_BUDGET,
        timings: Timings | None = None,
    ) -> None:
        self.calibration = calibration
        self.refit_budget = refit_budget
        self.timings = timings
        self.memory = Memory()
        # Each person's most recently active open session, by browser, for the events the
        # site's server sends for them (see sessions.py): looking through every open session
        # for each would cost as many visitors as are browsing at the time.
        self.latest: dict[int, str] = {}
        self._indexed: object = None  # the open sessions `latest` was built on

    def process(self, conn: sqlite3.Connection, events: Sequence[AppliedEvent]) -> None:
        memory = self.memory
        memory.begin(conn)
        batch = _Batch(conn, memory)
        opened = memory.open
        latest = self.latest
        if opened is not self._indexed:  # begin() read them back: a restart, a rollback
            self._indexed = opened
            latest = self.latest = {s.person_id: s.device for s in opened.values()}
        watermark = 0
        # The open session a sweep looks at first (least recently active). Most events close
        # nothing, so one comparison with it saves a sweep per event; it is looked up again
        # whenever the event moves, closes or opens the first session.
        oldest = _oldest(opened)
        move_to_end, touched = opened.move_to_end, batch.touched
        for event in events:
            at = event.timestamp
            if at > watermark:
                watermark = at
                # Close what has ended by now, not at the end of the batch: a session is learnt
                # before the events after it whatever the batching (see `_attribute`).
                if oldest is not None and oldest.last_ms < at - SESSION_GAP_MS:
                    self._sweep(batch, watermark)
                    oldest = _oldest(opened)
            if event.anonymous_id is None:
                # The site's server sent it (see sessions.py): it joins the session the person
                # is browsing in, which an order is then judged on, or no session at all.
                key = latest.get(event.person_id, "")
                session = opened.get(key)
                if session is None or not session.takes(event.person_id, at):
                    continue
            else:
                key = event.anonymous_id
                session = opened.get(key)
                if session is not None and not session.continues(at):
                    self._close(batch, session)
                    session = None
                if session is None:
                    session = opened[key] = Session(key, event.person_id, at, at)
                elif session.person_id != event.person_id and latest.get(session.person_id) == key:
                    del latest[session.person_id]  # a login handed the session to the account
                latest[event.person_id] = key
            move_to_end(key)
            if oldest is None or oldest.device == key:
                oldest = _oldest(opened)
            session.add(event)
            if session.identified:
                touched.add(key)
            if event.event == CONVERSION and event.identified:
                self._attribute(batch, event, session)
        self._sweep(batch, watermark)
        self._refits(batch)
        batch.flush(watermark)
        memory.trim()

    def _sweep(self, batch: _Batch, watermark: int) -> None:
        """Close the sessions that ended by `watermark` (nothing of theirs for 30 minutes).

        Oldest activity first: stop at the first session still open (one that a late event
        moved back in time waits for a later sweep). Run whenever the watermark moves, so a
        session is closed (learnt, and its refits due) at the same point of the stream whether
        the worker took it in one batch or many.
        """
        opened = batch.memory.open
        cutoff = watermark - SESSION_GAP_MS
        while opened:
            oldest = next(iter(opened.values()))
            if oldest.last_ms >= cutoff:
                break
            self._close(batch, oldest)

    def _attribute(self, batch: _Batch, event: AppliedEvent, session: Session) -> None:
        """Judge an order with the model as it stood at that moment.

        The sessions that ended before it are learnt already (`_sweep`); a refit of its account
        that came due is run now rather than at the end of the batch (outside the batch's refit
        budget: it is one per order at most), so a backlog taken in a few big batches is judged
        as it would have been live.
        """
        account = batch.account(event.person_id)
        if account.refit_due:
            self._refit_now(batch, account)
        model = account.model
        logits = model.logits(session_features(session))
        member, probability, probabilities = self.calibration.attribute(
            logits, model.sessions_seen, model.member_ids
        )
        order_id = event.properties.get("order_id")
        store.add_attribution(
            batch.conn,
            store.Attribution(
                event.seq,
                event.person_id,
                str(order_id) if order_id is not None else None,
                event.timestamp,
                session.device,
                member,
                probability,
                probabilities,
                [float(x) for x in logits],
                model.sessions_seen,
            ),
        )

    def _close(self, batch: _Batch, session: Session) -> None:
        batch.memory.open.pop(session.device, None)
        if self.latest.get(session.person_id) == session.device:
            del self.latest[session.person_id]
        if not session.identified:
            return
        batch.closed.add(session.device)
        account = batch.account(session.person_id)
        started = time.perf_counter()
        features = session_features(session)
        model = account.model
        fresh = model.sessions_seen == 0
        loglik, resp = model.posterior(features)
        z = None
        if model.sessions_seen >= WARMUP:
            novelty = account.novelty
            theirs = account.browsers_since(novelty.since) if novelty.since is not None else ()
            z = model.log_novel(features, OWN_BROWSER, theirs) - loglik
            # What looks like someone new is not learnt into the members: a newcomer's
            # sessions stay new until a refit makes them a member (or finds they were not).
            known = 1.0 - newcomer_probability(z)
            resp = [known * r for r in resp]
        model.learn(features, resp)
        seen = model.sessions_seen
        best = max(range(len(resp)), key=resp.__getitem__)
        member = model.member_ids[best]
        total = sum(model.n)
        shares = {m: n / total for m, n in zip(model.member_ids, model.n, strict=True)}
        given = dict(zip(model.member_ids, resp, strict=True))
        for change in account.shares.add(member, given, shares, seen, session.start_ms):
            self._record(batch, account, change, session.start_ms, model.k)
            account.change_at = change.change_at  # a refit lets the one who left fade faster
            account.refit_due = True
        if z is not None and account.novelty.add(z, seen):
            account.newcomer = list(account.novelty.novel)
            account.refit_due = True
        judge = False
        if member in account.arrivals:
            beyond = account.shares.sessions[member] - MIN_SESSIONS
            if beyond == 0:
                account.refit_due = True  # enough of the new member to judge whether it joined
            judge = beyond > 0 and beyond % JUDGE_EVERY == 0
        browser = account.browsers.setdefault(session.device, [seen, 0])
        browser[1] += 1
        on_device = browser[1]
        if (
            seen in REFIT_AT
            or (seen > max(REFIT_AT) and seen % REFIT_EVERY == 0)
            or (on_device == NEW_DEVICE_SESSIONS and seen > NEW_DEVICE_AFTER)
        ):
            account.refit_due = True
        account.dirty = True
        if self.timings is not None:
            self.timings.updates.append(time.perf_counter() - started)
        confidence = resp[best]
        row_id = store.add_session(
            batch.conn,
            store.SessionRow(
                session.person_id,
                session.device,
                session.start_ms,
                features.to_dict(),
                member,
                confidence,
                None if fresh else -loglik,
            ),
        )
        batch.memory.windows.add(
            session.person_id,
            Recent(row_id, session.device, session.start_ms, features, member, confidence),
        )
        if judge:
            self._judge(batch, account, member)

    def _judge(self, batch: _Batch, account: Account, member: int) -> None:
        """Ask for a refit to judge a new member when the window as labelled now says it joined.

        Only the refit's labels decide: the online ones are a cheap first look, and recording
        joins on them raised false alarms.
        """
        rows = batch.memory.windows.get(batch.conn, account.person_id)
        start = account.model.sessions_seen - len(rows)
        mine = [row.member_id == member for row in rows]
        verdict = arrived(mine, _browser_since(account, rows, start), start + 1, member)
        if isinstance(verdict, Change):
            account.refit_due = True

    def _record(
        self, batch: _Batch, account: Account, change: Change, at_ms: int, members_before: int
    ) -> None:
        seen = account.model.sessions_seen
        store.add_drift(
            batch.conn,
            store.DriftEvent(
                account.person_id,
                at_ms,
                seen,
                seen - change.change_at,
                change.p_value,
                members_before,
                change.kind,
                change.member,
            ),
        )

    def _refits(self, batch: _Batch) -> None:
        due = [a for a in batch.accounts.values() if a.refit_due]
        for account in due[: self.refit_budget]:
            self._refit_now(batch, account)

    def _refit_now(self, batch: _Batch, account: Account) -> None:
        started = time.perf_counter()
        rows = batch.memory.windows.get(batch.conn, account.person_id)
        account.refit_due = False
        account.dirty = True
        if rows:
            self._refit(batch, account, rows)
        if self.timings is not None:
            self.timings.refits.append(time.perf_counter() - started)

    def _refit(self, batch: _Batch, account: Account, rows: list[Recent]) -> None:
        features = [r.features for r in rows]
        start = account.model.sessions_seen - len(rows)  # the session count before the window
        weights = DECAY ** np.arange(len(rows))[::-1]
        if account.change_at is not None:
            before = start + 1 + np.arange(len(rows)) < account.change_at
            weights = np.where(before, weights * BEFORE_CHANGE_WEIGHT, weights)
            account.change_at = None
        newcomer = None
        if account.newcomer is not None:
            newcomer = np.zeros(len(rows))
            newcomer[[at - start - 1 for at in account.newcomer if at > start]] = 1.0
            account.newcomer = None
        members_before = account.model.k
        result = refit(account.model, features, weights, seed=account.person_id, newcomer=newcomer)
        members_known = list(account.model.member_ids)
        account.model = model = result.model
        labels = result.resp.argmax(axis=1)
        relabelled = []
        for i, (row, c) in enumerate(zip(rows, labels, strict=True)):
            member, confidence = model.member_ids[c], float(result.resp[i, c])
            if member != row.member_id or abs(confidence - row.confidence) > RELABEL_TOLERANCE:
                relabelled.append((member, confidence, row.id))
                row.member_id, row.confidence = member, confidence
        store.relabel(batch.conn, relabelled)
        self._arrivals(batch, account, rows, result, labels, members_before)
        if model.member_ids != members_known:
            store.save_members(batch.conn, account.person_id, profiles(model))

    def _arrivals(
        self,
        batch: _Batch,
        account: Account,
        rows: list[Recent],
        result: Refit,
        labels: np.ndarray,
        members_before: int,
    ) -> None:
        """Judge the members refits found (join or not)."""
        model = result.model
        start = model.sessions_seen - len(rows)
        account.shares.keep_only(model.member_ids)
        if result.new_members or model.k != members_before:
            # What looked new may be one of the members now. The leave sums are kept: member ids
            # carry across refits, so a member's silence so far is still its silence, and
            # wiping it on every refit that moved the count lost leaves refitted mid-silence.
            account.novelty.reset()
        for column, member in enumerate(model.member_ids):
            if member in result.new_members:
                account.shares.sessions[member] = int((labels == column).sum())
        pending = [m for m in account.arrivals if m in model.member_ids] + result.new_members
        account.arrivals = []
        browser_since = _browser_since(account, rows, start)
        for member in pending:
            column = model.member_ids.index(member)
            verdict = arrived(list(labels == column), browser_since, start + 1, member)
            if verdict is True:
                account.arrivals.append(member)
            elif isinstance(verdict, Change):
                self._record(batch, account, verdict, rows[-1].start_ms, members_before)


def _oldest(opened: Mapping[str, Session]) -> Session | None:
    return next(iter(opened.values()), None)


def _browser_since(account: Account, rows: list[Recent], start: int) -> list[int]:
    """Per window row, the window position where its browser first shows."""
    # A browser the state does not know (it was saved by an older Bond) counts as old.
    return [account.browsers.get(row.device, [start])[0] - start - 1 for row in rows]


class _Batch:
    """The accounts one batch touches, and the browsers whose open session it changed."""

    def __init__(self, conn: sqlite3.Connection, memory: Memory) -> None:
        self.conn = conn
        self.memory = memory
        self.accounts: dict[int, Account] = {}
        self.touched: set[str] = set()
        self.closed: set[str] = set()

    def account(self, person_id: int) -> Account:
        account = self.accounts.get(person_id)
        if account is None:
            account = self.accounts[person_id] = self.memory.account(self.conn, person_id)
        return account

    def flush(self, at: int) -> None:
        opened = self.memory.open
        # Not `closed - opened.keys()`: a set minus a keys view walks every open session.
        store.drop_open(self.conn, [d for d in self.closed if d not in opened])
        store.save_open(
            self.conn,
            [opened[d].to_dict() for d in self.touched if d in opened and opened[d].identified],
        )
        for account in self.accounts.values():
            if account.dirty:
                store.save_state(
                    self.conn,
                    account.person_id,
                    account.to_dict(),
                    sessions_seen=account.model.sessions_seen,
                    members=account.model.k,
                    at=at,
                )
                account.dirty = False
