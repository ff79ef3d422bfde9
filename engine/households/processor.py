"""The real-time path: events in, sessions closed, models updated, conversions attributed.

Called once per worker batch inside its transaction. State is read from and written back to
state.db within the batch, so a rolled-back batch leaves no trace and a restart continues where
the last committed batch ended. Heavy work is bounded per batch: at most `refit_budget` refits
run; the others stay due and run in a later batch that touches the account.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.hooks import AppliedEvent
from engine.households import store
from engine.households.calibration import Calibration
from engine.households.drift import PageHinkley
from engine.households.features import SessionFeatures, session_features
from engine.households.model import DECAY, HouseholdModel, refit
from engine.households.sessions import CONVERSION, SESSION_GAP_MS, Session, device_key

REFIT_WINDOW = 128
# Early refits matter most (cold start); later the online updates carry the model between them.
REFIT_AT = frozenset({6, 10, 16, 24, 32, 48, 64, 96, 128})
REFIT_EVERY = 64
# After a confirmed change, sessions from before it count this much in the refit.
BEFORE_CHANGE_WEIGHT = 0.3


@dataclass
class Account:
    person_id: int
    model: HouseholdModel
    drift: PageHinkley
    refit_due: bool = False
    change_at: int | None = None  # sessions_seen at the last confirmed change
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "drift": self.drift.to_dict(),
            "refit_due": self.refit_due,
            "change_at": self.change_at,
        }

    @classmethod
    def from_dict(cls, person_id: int, raw: dict[str, Any]) -> Account:
        return cls(
            person_id,
            HouseholdModel.from_dict(raw["model"]),
            PageHinkley.from_dict(raw["drift"]),
            raw["refit_due"],
            raw["change_at"],
        )


@dataclass
class Timings:
    """Per-session model update times (seconds), for `bond simulate` to report a p99."""

    updates: list[float] = field(default_factory=list)
    refits: list[float] = field(default_factory=list)


class HouseholdProcessor:
    def __init__(
        self, calibration: Calibration, *, refit_budget: int = 32, timings: Timings | None = None
    ) -> None:
        self.calibration = calibration
        self.refit_budget = refit_budget
        self.timings = timings

    def process(self, conn: sqlite3.Connection, events: Sequence[AppliedEvent]) -> None:
        batch = _Batch(conn)
        watermark = 0
        for event in events:
            watermark = max(watermark, event.timestamp)
            key = device_key(event.anonymous_id, event.user_id)
            session = batch.open_session(key)
            if session is not None and not session.continues(event.timestamp):
                self._close(batch, session)
                session = None
            if session is None:
                session = Session(key, event.person_id, event.timestamp, event.timestamp)
                batch.opened[key] = session
            session.add(event)
            if event.event == CONVERSION and event.identified:
                self._attribute(batch, event, session)
        for raw in store.stale_open(conn, watermark - SESSION_GAP_MS):
            if raw["device"] not in batch.opened and raw["device"] not in batch.closed:
                self._close(batch, Session.from_dict(raw))
        for session in [s for s in batch.opened.values() if s.last_ms < watermark - SESSION_GAP_MS]:
            self._close(batch, session)
        self._refits(batch)
        batch.flush(watermark)

    def _attribute(self, batch: _Batch, event: AppliedEvent, session: Session) -> None:
        account = batch.account(event.person_id)
        features = session_features(session)
        logits = account.model.logits(features)
        probs = self.calibration.probabilities(logits)
        best = int(np.argmax(probs))
        order_id = event.properties.get("order_id")
        store.add_attribution(
            batch.conn,
            store.Attribution(
                event.seq,
                event.person_id,
                str(order_id) if order_id is not None else None,
                event.timestamp,
                session.device,
                account.model.member_ids[best],
                float(probs[best]),
                {m: float(p) for m, p in zip(account.model.member_ids, probs, strict=True)},
                [float(x) for x in logits],
                account.model.sessions_seen,
            ),
        )

    def _close(self, batch: _Batch, session: Session) -> None:
        batch.opened.pop(session.device, None)
        batch.closed.add(session.device)
        if not session.identified:
            return
        account = batch.account(session.person_id)
        features = session_features(session)
        started = time.perf_counter()
        model = account.model
        surprise = None
        if model.sessions_seen:
            surprise = -model.log_likelihood(features)
            self._watch(batch, account, surprise, session.start_ms)
        resp, _ = model.update(features)
        if self.timings is not None:
            self.timings.updates.append(time.perf_counter() - started)
        best = int(np.argmax(resp))
        store.add_session(
            batch.conn,
            store.SessionRow(
                session.person_id,
                session.device,
                session.start_ms,
                _features_dict(features),
                model.member_ids[best],
                float(resp[best]),
                surprise,
            ),
        )
        seen = model.sessions_seen
        if seen in REFIT_AT or (seen > max(REFIT_AT) and seen % REFIT_EVERY == 0):
            account.refit_due = True
        account.dirty = True

    def _watch(self, batch: _Batch, account: Account, surprise: float, at_ms: int) -> None:
        drift = account.drift.add(surprise)
        if drift is None:
            return
        since = account.drift.count - drift.change_at
        account.change_at = account.model.sessions_seen - since
        account.refit_due = True
        store.add_drift(
            batch.conn,
            store.DriftEvent(
                account.person_id,
                at_ms,
                account.model.sessions_seen,
                since,
                drift.p_value,
                account.model.k,
            ),
        )

    def _refits(self, batch: _Batch) -> None:
        due = [a for a in batch.accounts.values() if a.refit_due]
        for account in due[: self.refit_budget]:
            started = time.perf_counter()
            rows = store.recent_sessions(batch.conn, account.person_id, REFIT_WINDOW)
            features = [_features_from(r.features) for r in rows]
            age = np.arange(len(rows))[::-1]
            weights = DECAY**age
            if account.change_at is not None:
                first = account.model.sessions_seen - len(rows)
                before_change = first + np.arange(len(rows)) < account.change_at
                weights = np.where(before_change, weights * BEFORE_CHANGE_WEIGHT, weights)
            account.model = refit(account.model, features, weights, seed=account.person_id)
            if account.change_at is not None:
                # The surprise baseline was the old household's; a scheduled refit keeps it.
                account.drift = PageHinkley()
                account.change_at = None
            account.refit_due = False
            account.dirty = True
            if self.timings is not None:
                self.timings.refits.append(time.perf_counter() - started)


class _Batch:
    """The state one batch works on: loaded on first touch, written back at the end."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.opened: dict[str, Session] = {}
        self.closed: set[str] = set()
        self.accounts: dict[int, Account] = {}

    def open_session(self, device: str) -> Session | None:
        if device in self.opened:
            return self.opened[device]
        if device in self.closed:
            return None
        raw = store.load_open(self.conn, device)
        if raw is None:
            return None
        session = self.opened[device] = Session.from_dict(raw)
        return session

    def account(self, person_id: int) -> Account:
        if person_id not in self.accounts:
            raw = store.load_state(self.conn, person_id)
            self.accounts[person_id] = (
                Account.from_dict(person_id, raw)
                if raw is not None
                else Account(person_id, HouseholdModel(), PageHinkley())
            )
        return self.accounts[person_id]

    def flush(self, at: int) -> None:
        store.drop_open(self.conn, self.closed - set(self.opened))
        store.save_open(self.conn, [s.to_dict() for s in self.opened.values()])
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
                store.save_members(self.conn, account.person_id, account.model.profiles())


def _features_dict(f: SessionFeatures) -> dict[str, Any]:
    return {
        "hour_sin": f.hour_sin,
        "hour_cos": f.hour_cos,
        "weekend": f.weekend,
        "device": f.device,
        "device_type": f.device_type,
        "categories": [list(c) for c in f.categories],
    }


def _features_from(raw: dict[str, Any]) -> SessionFeatures:
    return SessionFeatures(
        raw["hour_sin"],
        raw["hour_cos"],
        raw["weekend"],
        raw["device"],
        raw["device_type"],
        tuple((c, float(n)) for c, n in raw["categories"]),
    )
