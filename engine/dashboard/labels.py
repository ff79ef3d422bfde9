"""How lists name people and cut long strings from browsers."""

from __future__ import annotations

from typing import Any

from engine.timeline import IdentityReader

# Longer strings from browsers are cut in lists; a person's page shows values in full.
SHORT = 160


def short(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def label_of(profile: dict[str, Any]) -> dict[str, Any]:
    """A person as a list shows them: their first email, else user id (None: anonymous)."""
    names = profile["emails"] or profile["user_ids"]
    return {
        "id": profile["id"],
        "name": short(names[0]) if names else None,
        "identified": profile["identified"],
    }


class People:
    """Labels for person ids in lists, each read once per request through the reader."""

    def __init__(self, reader: IdentityReader) -> None:
        self.reader = reader
        self._labels: dict[int, dict[str, Any] | None] = {}

    def label(self, person_id: int | None) -> dict[str, Any] | None:
        if person_id is None:
            return None
        if person_id not in self._labels:
            profile = self.reader.profile(person_id)
            self._labels[person_id] = None if profile is None else label_of(profile)
        return self._labels[person_id]
