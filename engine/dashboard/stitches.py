"""Stitches: each identification as it happened, and each refusal with its reason.

A page is read newest first by id through `IdentityReader.identity_events`; the live feed asks for
the ones after the newest it has sent.
"""

from __future__ import annotations

from typing import Any

from engine.dashboard.labels import People
from engine.timeline import IdentityReader

# What each refusal reason means to an operator, in a sentence.
REFUSALS = {
    "shared_browser": "a second person logged in on this browser: kept apart, not merged",
    "identified_persons_not_merged": "an alias between two identified people: never merged",
    "email_of_other_person": "the email belongs to someone else: the user id won",
    "max_user_ids": "this person already has the most user ids allowed",
}


def stitches_page(reader: IdentityReader, limit: int, before: int | None) -> dict[str, Any]:
    changes = reader.identity_events(limit, before_id=before)
    more = len(changes) == max(1, limit) and bool(changes)
    counts: dict[str, int] = {}
    for name, n in reader.status()["identity_changes"].items():
        kind = name.partition(":")[0]
        counts[kind] = counts.get(kind, 0) + n
    return {
        "stitches": labelled(reader, changes),
        "next": changes[-1]["id"] if more else None,
        "counts": counts,
    }


def stitches_after(
    reader: IdentityReader, after: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` identity events right after id `after`, oldest first (the feed's order),
    and the id to continue after.

    Ids grow by one per event, so the next ones are those below after + limit + 1; the window
    moves on even when it holds none (a gap), up to the newest id.
    """
    newest = newest_id(reader)
    if newest <= after:
        return [], after
    window = min(after + limit, newest)
    changes = [c for c in reader.identity_events(limit, before_id=window + 1) if c["id"] > after]
    return labelled(reader, changes[::-1]), window


def newest_id(reader: IdentityReader) -> int:
    newest = reader.identity_events(1)
    return int(newest[0]["id"]) if newest else 0


def labelled(reader: IdentityReader, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    people = People(reader)
    for change in changes:
        change["person"] = people.label(change["person_id"])
        change["other"] = people.label(change["other_person_id"])
        change["explanation"] = REFUSALS.get(change["reason"] or "")
        first_seen = change["first_seen"]
        change["after_first_visit_ms"] = change["at"] - first_seen if first_seen else None
    return changes
