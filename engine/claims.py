"""Backfilling `timeline.claim` on a state whose rows were applied before identity version 3.

Those rows have no claim, so a late login on a shared browser would take the other person's
later events that named them (see IdentityGraph._split). Migration 7 records the worker offset
at the upgrade; every row at or below it whose claim is NULL is looked at once, in timeline key
order, `BATCH_ROWS` rows per transaction with the cursor saved in the same one, so a crash
resumes where it stopped. The worker finishes this before applying any new event, so every
split it makes sees the claims a fresh install would have. Once done the progress row is gone
and the worker never looks again.

Who an event named comes from its raw event in events.db (its user id, or an identify's
email). When retention or an erasure has removed the raw event, the timeline row itself still
holds an identify's traits, so an email is found there; a user id is not kept on the row, so
such an event stays unclaimed and a late login can still take it, as before the upgrade.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from bond.ids import normalize_email
from bond.logs import log
from bond.storage.sqlite import connect, rollback
from engine.privacy import crypto
from engine.store import IdentityStore

# About 20 ms of work on this machine: a batch of events is held back no longer than that.
BATCH_ROWS = 2_000


class ClaimBackfill:
    def __init__(self, conn: sqlite3.Connection, store: IdentityStore, events_db: Path) -> None:
        self.conn = conn
        self.store = store
        self.events_db = events_db
        self.pending = (
            conn.execute("SELECT 1 FROM claim_backfill WHERE id = 1").fetchone() is not None
        )
        self.claimed = 0  # by this process: a restart counts from where it resumed
        if self.pending:
            log("claims_backfill_started")

    def step(self) -> int:
        """Claim the next rows, in one transaction with the cursor; returns how many it read."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            read = self._step()
            conn.execute("COMMIT")
        except BaseException:
            self.store.reset()
            rollback(conn)
            raise
        return read

    def _step(self) -> int:
        conn = self.conn
        progress = conn.execute(
            "SELECT up_to_seq, browser_id, ts, seq FROM claim_backfill WHERE id = 1"
        ).fetchone()
        if progress is None:
            self.pending = False
            return 0
        up_to, *cursor = progress
        # Read by key whatever the claim, so a step costs BATCH_ROWS rows however few need one.
        rows = conn.execute(
            "SELECT t.browser_id, t.ts, t.seq, t.type, t.claim IS NULL, "
            "CASE WHEN t.type = 'identify' THEN t.data END, b.key "
            "FROM timeline t JOIN browsers b ON b.id = t.browser_id "
            "WHERE (t.browser_id, t.ts, t.seq) > (?, ?, ?) "
            "ORDER BY t.browser_id, t.ts, t.seq LIMIT ?",
            (*cursor, BATCH_ROWS),
        ).fetchall()
        # Only a browser's events ever carry a claim (see Worker._apply).
        todo = [r for r in rows if r[4] and r[2] <= up_to and r[6].startswith("a:")]
        raw = self._raw([r[2] for r in todo])
        claims = []
        for browser_id, ts, seq, type_, _, data, _key in todo:
            person = self._named(raw.get(seq), type_, data)
            if person is not None:
                claims.append((person, browser_id, ts, seq))
        conn.executemany(
            "UPDATE timeline SET claim = ? WHERE browser_id = ? AND ts = ? AND seq = ?", claims
        )
        self.claimed += len(claims)
        if len(rows) < BATCH_ROWS:
            conn.execute("DELETE FROM claim_backfill WHERE id = 1")
            self.pending = False
            log("claims_backfilled", claimed=self.claimed, up_to_seq=up_to)
        else:
            conn.execute(
                "UPDATE claim_backfill SET browser_id = ?, ts = ?, seq = ? WHERE id = 1",
                rows[-1][:3],
            )
        return len(rows)

    def _raw(self, seqs: list[int]) -> dict[int, tuple[str | None, bytes | None]]:
        """(user id, identify body) of the events the log still holds, by seq."""
        if not seqs:
            return {}
        log = connect(self.events_db)
        try:
            marks = ",".join("?" * len(seqs))
            return {
                seq: (user_id, body)
                for seq, user_id, body in log.execute(
                    "SELECT seq, user_id, CASE WHEN type = 'identify' THEN body END "
                    f"FROM events WHERE seq IN ({marks})",
                    seqs,
                )
            }
        finally:
            log.close()

    def _named(
        self, raw: tuple[str | None, bytes | None] | None, type_: str, data: bytes | None
    ) -> int | None:
        """The person the event named, as the worker found it (the user id wins over the
        email); None for an anonymous event, or one whose identifiers are gone."""
        store = self.store
        if raw is not None:
            user_id, body = raw
            if user_id is not None:
                return store.person_of("user_id", user_id)
            traits = _object(body).get("traits")
        elif type_ == "identify":
            traits = _object(store.keys.open(data, crypto.TIMELINE) if data else None)
        else:
            return None
        email = normalize_email(traits.get("email")) if isinstance(traits, dict) else None
        return store.person_of("email", email) if email else None


def _object(document: bytes | None) -> dict[str, object]:
    """A raw event's body, or an identify's timeline data (its traits); {} when unreadable."""
    if not document:
        return {}
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
