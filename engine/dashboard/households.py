"""Households: shared accounts whose behaviour shows more than one member.

The list reads only which account has how many members (the members table's primary key, in
order, so a page stops after `limit` households); an account's members, attributions and drift
come from `person_households`, as the read API serves them.
"""

from __future__ import annotations

from typing import Any

from bond.errors import NotFound
from engine.dashboard.labels import People, label_of
from engine.dashboard.tables import has_table
from engine.households.store import person_households
from engine.timeline import IdentityReader


def households_page(reader: IdentityReader, limit: int, before: int | None) -> dict[str, Any]:
    """Accounts with two or more members, newest account first; `next` pages on."""
    limit = max(1, min(limit, 200))
    rows = []
    if has_table(reader.conn, "households_members"):
        rows = reader.conn.execute(
            "SELECT person_id, count(*) FROM households_members WHERE person_id < ? "
            "GROUP BY person_id HAVING count(*) > 1 ORDER BY person_id DESC LIMIT ?",
            (before if before is not None else 2**62, limit),
        ).fetchall()
    people = People(reader)
    households = [
        {"person": people.label(pid), "members": n, **_activity(reader, pid)} for pid, n in rows
    ]
    return {"households": households, "next": rows[-1][0] if len(rows) == limit else None}


def _activity(reader: IdentityReader, person_id: int) -> dict[str, int]:
    """Sessions modelled and orders attributed, counted in their (person, ...) indexes.

    Not `households_models.sessions_seen`: it sits behind the model's large state blob, and
    reading it walks the blob's overflow pages.
    """
    counts = {}
    for name, table in (("sessions", "households_sessions"), ("orders", "households_attributions")):
        row = reader.conn.execute(
            f"SELECT count(*) FROM {table} WHERE person_id = ?", (person_id,)
        ).fetchone()
        counts[name] = int(row[0])
    return counts


def household(reader: IdentityReader, person_id: int) -> dict[str, Any]:
    profile = reader.profile(person_id)
    if profile is None:
        raise NotFound(f"no person {person_id}")
    if has_table(reader.conn, "households_members"):
        found = person_households(reader.conn, person_id)
    else:
        found = {"person_id": person_id, "members": [], "attributions": [], "drift": []}
    return {**found, "person": label_of(profile)}


def member_count(reader: IdentityReader, person_id: int) -> int:
    """How many members the account's behaviour shows (0: not modelled yet)."""
    if not has_table(reader.conn, "households_members"):
        return 0
    row = reader.conn.execute(
        "SELECT count(*) FROM households_members WHERE person_id = ?", (person_id,)
    ).fetchone()
    return int(row[0])
