"""Each account's refit window: its latest sessions, kept in memory for the accounts that refit.

A refit reads the account's last REFIT_WINDOW finished sessions. Reading and decoding them from
state.db cost about as much as the refit's EM, and an account refits every dozen sessions or
so, so the windows of the accounts refitted last stay in memory (WINDOWS_KEPT of them, the
least recently refitted dropped first) and each finished session is appended to its account's
window if it is there. The database stays the truth: a window not in memory is read from it,
and all windows are dropped with the rest of the processor's copy (memory.py).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict, deque
from dataclasses import dataclass

from engine.households import store
from engine.households.features import SessionFeatures

REFIT_WINDOW = 128
WINDOWS_KEPT = 2_000  # about 40 kB each


@dataclass(slots=True)
class Recent:
    """A finished session as a refit sees it; member and confidence follow relabelling."""

    id: int
    device: str
    start_ms: int
    features: SessionFeatures
    member_id: int
    confidence: float


class Windows:
    def __init__(self, kept: int = WINDOWS_KEPT) -> None:
        self.kept = kept
        self._windows: OrderedDict[int, deque[Recent]] = OrderedDict()

    def get(self, conn: sqlite3.Connection, person_id: int) -> list[Recent]:
        window = self._windows.get(person_id)
        if window is None:
            window = deque(
                (
                    Recent(
                        row.id,
                        row.device,
                        row.start_ms,
                        SessionFeatures.from_dict(row.features),
                        row.member_id,
                        row.confidence,
                    )
                    for row in store.recent_sessions(conn, person_id, REFIT_WINDOW)
                ),
                maxlen=REFIT_WINDOW,
            )
            self._windows[person_id] = window
            while len(self._windows) > self.kept:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(person_id)
        return list(window)

    def add(self, person_id: int, recent: Recent) -> None:
        """A session of the account finished (kept only if its window is in memory)."""
        window = self._windows.get(person_id)
        if window is not None:
            window.append(recent)

    def clear(self) -> None:
        self._windows.clear()
