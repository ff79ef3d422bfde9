"""What the processor keeps between batches, and how it knows its copy is still the database's.

Reading every touched account's model and every browser's open session back from state.db on
each batch cost more than the identity graph itself. So the worker keeps them: accounts (the
least recently used beyond ACCOUNTS_KEPT are dropped, they are saved already) and the open
sessions, oldest activity first. Each batch writes a new generation in its transaction; if the
generation found at the start of a batch is not the one this process wrote (the batch was rolled
back, or an erasure changed the tables), the copy is dropped and read again.

Sessions of browsers nobody has logged in on yet are kept only here, never written: most traffic
is anonymous, and such a session matters only if a login continues it. A restart forgets them,
so a session that was anonymous before the restart and logged in after it starts at the login.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict

from engine.households import store
from engine.households.account import Account
from engine.households.sessions import Session
from engine.households.window import Windows

ACCOUNTS_KEPT = 20_000


class Memory:
    def __init__(self, accounts_kept: int = ACCOUNTS_KEPT) -> None:
        self.accounts_kept = accounts_kept
        self.generation: int | None = None
        self.accounts: OrderedDict[int, Account] = OrderedDict()
        self.open: OrderedDict[str, Session] = OrderedDict()
        self.windows = Windows()

    def begin(self, conn: sqlite3.Connection) -> None:
        """Start a batch: keep the copy only if the database is as this process left it."""
        found = store.generation(conn)
        if found != self.generation:
            self.accounts.clear()
            self.windows.clear()
            sessions = sorted(
                (Session.from_dict(raw) for raw in store.all_open(conn)), key=lambda s: s.last_ms
            )
            self.open = OrderedDict((s.device, s) for s in sessions)
        self.generation = found + 1
        store.set_generation(conn, self.generation)

    def account(self, conn: sqlite3.Connection, person_id: int) -> Account:
        account = self.accounts.get(person_id)
        if account is not None:
            self.accounts.move_to_end(person_id)
            return account
        raw = store.load_state(conn, person_id)
        account = Account.from_dict(person_id, raw) if raw is not None else Account(person_id)
        self.accounts[person_id] = account
        return account

    def trim(self) -> None:
        """Forget the least recently used accounts beyond the limit (call once they are saved)."""
        while len(self.accounts) > self.accounts_kept:
            self.accounts.popitem(last=False)
