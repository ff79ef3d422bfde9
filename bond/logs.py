"""JSON-lines logs on stderr: one object per request summary or notable event.

Operators grep and ship these lines, so each is a flat object with an `event` name, counts and
reasons. Nothing personal or secret goes in: emails are logged as a short hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import time
from typing import Any, TextIO

import orjson

_stream: TextIO = sys.stderr


def log(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    # A log on a full disk (or a reader gone) drops or delays the line rather than stop what
    # logs it: the collector's restart of its commit process died on one, and never came back.
    with contextlib.suppress(OSError):
        _stream.write(orjson.dumps(record, default=str).decode() + "\n")
        _stream.flush()


class Tally:
    """Routine outcomes counted, and written as one line per interval rather than one each.

    A line per request costs a JSON encoding and a write to stderr, more than a request's own
    work at thousands a second, and buries the lines an operator needs. What is routine is
    counted here under short keys; anything notable still gets its own line from `log`, up to
    a few of each kind per interval (`own_line`). The line goes out `interval_s` after the first
    count of a window, so an idle process is silent.
    """

    def __init__(self, event: str, interval_s: float = 1.0) -> None:
        self.event = event
        self.interval_s = interval_s
        self._counts: dict[tuple[object, ...], int] = {}
        self._lines: dict[tuple[object, ...], int] = {}
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, key: tuple[object, ...], amount: int = 1) -> None:
        """Count under `key`, written as its parts joined by spaces; call from the loop's thread."""
        self._open()
        counts = self._counts
        counts[key] = counts.get(key, 0) + amount

    def own_line(self, key: tuple[object, ...], lines: int) -> bool:
        """Whether an outcome of kind `key` still gets a line of its own in this window: the
        first `lines` do, the rest are counted under `key` in the window's line. A client that
        sends the same bad request a thousand times a second is one problem, not a thousand
        lines that bury the others."""
        self._open()
        seen = self._lines.get(key, 0)
        if seen < lines:
            self._lines[key] = seen + 1
            return True
        self.add(key)
        return False

    def _open(self) -> None:
        if self._timer is None:
            self._since = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self.flush)

    def flush(self) -> None:
        """Write the window's line now (the timer does; so does a shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._lines = {}
        if self._counts:
            counts = {" ".join(map(str, key)): n for key, n in self._counts.items()}
            self._counts = {}
            log(self.event, seconds=round(time.monotonic() - self._since, 3), counts=counts)


def short_hash(value: str) -> str:
    """A stable, non-reversible tag for a personal value (an email) to correlate log lines."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def redirect(stream: TextIO) -> TextIO:
    """Send logs elsewhere (tests capture them to check what reaches an operator); returns
    where they went until now."""
    global _stream
    previous, _stream = _stream, stream
    return previous
