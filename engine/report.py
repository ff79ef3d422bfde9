"""`bond person WHO`: a person's identifiers, traits and stitched timeline, for an operator."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from bond.config import Config
from bond.errors import NotFound
from bond.storage.sqlite import connect
from engine.dashboard.live import LogTail
from engine.schema import migrate_identity
from engine.timeline import IdentityReader

# C0 and C1 controls and DEL, each shown as its escape: names, ids, traits and properties came
# from browsers, and a terminal would obey them (clear the screen, retitle the window, overwrite
# the line). JSON escapes C0 but not DEL or C1, so every line goes through this, not some fields.
_VISIBLE = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def _unapplied(config: Config, offset: int) -> str:
    """What to add to "no person known" when the worker has not applied the whole log: the
    person may be in the part it has not read (a worker stopped, or never started)."""
    tail = LogTail(config.events_db)
    try:
        lag = max(tail.head() - offset, 0)
    finally:
        tail.close()
    if not lag:
        return ""
    return (
        f" yet: the worker has not applied the newest {lag:,} event(s) of the log "
        "(is bond worker running on this data directory?)"
    )


def print_person(config: Config, who: str, *, limit: int, out: TextIO = sys.stdout) -> None:
    """Look `who` up as an email, then a user id, then an anonymous id, and print the person."""
    conn = connect(config.state_db, durable=False)
    try:
        migrate_identity(conn)
        reader = IdentityReader(conn)
        person_id = (
            reader.find(email=who) or reader.find(user_id=who) or reader.find(anonymous_id=who)
        )
        profile = reader.profile(person_id) if person_id is not None else None
        if person_id is None or profile is None:
            unapplied = _unapplied(config, int(reader.status()["offset"]))
            raise NotFound(
                f"no person known by the email, user id or anonymous id {who!r}{unapplied}"
            )
        page = reader.timeline(person_id, limit)
    finally:
        conn.close()
    state = "identified" if profile["identified"] else "anonymous"
    _say(
        out,
        f"person {profile['id']} · {state} · {len(profile['anonymous_ids'])} browser(s) · "
        f"{profile['event_count']} event(s)",
    )
    for label, key in (
        ("user ids", "user_ids"),
        ("emails", "emails"),
        ("browsers", "anonymous_ids"),
    ):
        if profile[key]:
            _say(out, f"  {label}: {', '.join(profile[key])}")
    _say(
        out, f"  first seen {_when(profile['first_seen'])}, last seen {_when(profile['last_seen'])}"
    )
    if profile["traits"]:
        _say(out, f"  traits: {orjson.dumps(profile['traits']).decode()}")
    shown = f"newest {len(page.events)}" if page.next else "all"
    _say(out)
    _say(out, f"timeline ({shown}, newest first)")
    for event in page.events:
        _say(out, _line(event))


def _say(out: TextIO, line: str = "") -> None:
    out.write(line.translate(_VISIBLE) + "\n")


def _line(event: dict[str, Any]) -> str:
    details = event.get("properties", event.get("traits")) or {}
    return "  ".join(
        [
            _when(event["timestamp"]),
            f"{event['type']:<8}",
            f"{event['event'] or '':<20}",
            f"{event['anonymous_id'] or '(server)':<24}",
            orjson.dumps(details).decode()[:80],
        ]
    )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
