"""JSON-lines logs on stderr: one object per request summary or notable event.

Operators grep and ship these lines, so each is a flat object with an `event` name, counts and
reasons. Nothing personal or secret goes in: emails are logged as a short hash.
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import Any, TextIO

import orjson

_stream: TextIO = sys.stderr


def log(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    _stream.write(orjson.dumps(record, default=str).decode() + "\n")
    _stream.flush()


def short_hash(value: str) -> str:
    """A stable, non-reversible tag for a personal value (an email) to correlate log lines."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def redirect(stream: TextIO) -> None:
    """Send logs elsewhere (tests capture them to check what reaches an operator)."""
    global _stream
    _stream = stream
