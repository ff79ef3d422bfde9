"""A failure that repeats until its cause goes away (a full disk), logged as one story.

Bond retries a write that failed: the collector at every request, the worker after a pause, the
checkpointer after every commit. Left to log each failure, a full disk wrote a line per commit,
hundreds a second that buried every other line (and, on the same disk, could not be written).
Here an outage gets a line when it starts, a reminder every `remind_s` while it lasts with the
failures so far, and a line when it ends saying how long it lasted.
"""

from __future__ import annotations

import time
from typing import Any

from bond.logs import log

REMIND_S = 60.0


class Outage:
    """Lines `<event>_failed`, `<event>_still_failing` and `<event>_recovered`."""

    def __init__(self, event: str, *, remind_s: float = REMIND_S) -> None:
        self.event = event
        self._remind_s = remind_s
        self._since: float | None = None  # when the first failure of this outage happened
        self._reminded = 0.0
        self.failures = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, reason: str, **fields: Any) -> None:
        now = time.monotonic()
        self.failures += 1
        if self._since is None:
            self._since = self._reminded = now
            log(f"{self.event}_failed", reason=reason, **fields)
        elif now - self._reminded >= self._remind_s:
            self._reminded = now
            log(
                f"{self.event}_still_failing",
                reason=reason,
                failures=self.failures,
                seconds=round(now - self._since, 1),
                **fields,
            )

    def ended(self, **fields: Any) -> None:
        """The write succeeded: a line if it had been failing."""
        if self._since is None:
            return
        seconds = round(time.monotonic() - self._since, 1)
        log(f"{self.event}_recovered", failures=self.failures, seconds=seconds, **fields)
        self._since, self.failures = None, 0
