"""The engine hook: household sessions, member models and attributions, in the worker's batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from engine.hooks import AppliedEvent, IdentityChange
from engine.households.calibration import load
from engine.households.processor import HouseholdProcessor
from engine.households.store import migrate_households


class HouseholdsHook:
    name = "households"

    def __init__(self) -> None:
        self.processor = HouseholdProcessor(load())

    def migrate(self, conn: sqlite3.Connection) -> None:
        migrate_households(conn)

    def on_events(self, conn: sqlite3.Connection, events: Sequence[AppliedEvent]) -> None:
        self.processor.process(conn, events)

    def on_identity(self, conn: sqlite3.Connection, change: IdentityChange) -> None:
        # Sessions follow their latest event's person, so a login mid-session already hands the
        # session to the account; nothing to do per change.
        return None
