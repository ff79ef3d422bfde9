"""One account's household state: its member model, change detectors and pending work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.households.drift import PageHinkley, Presence
from engine.households.model import HouseholdModel

# The saved state's layout; a state saved by an older Bond is rebuilt from the account's stored
# sessions by a refit rather than read.
STATE_VERSION = 2


@dataclass
class Account:
    person_id: int
    model: HouseholdModel = field(default_factory=HouseholdModel)
    surprise: PageHinkley = field(default_factory=PageHinkley)
    presence: Presence = field(default_factory=Presence)
    device_sessions: dict[str, int] = field(default_factory=dict)
    arrivals: list[int] = field(default_factory=list)  # new members not yet judged a join or not
    departures: list[int] = field(default_factory=list)  # silent members not yet judged
    refit_due: bool = False
    change_at: int | None = None  # session count where a confirmed change began, until refit
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "model": self.model.to_dict(),
            "surprise": self.surprise.to_dict(),
            "presence": self.presence.to_dict(),
            "device_sessions": self.device_sessions,
            "arrivals": self.arrivals,
            "departures": self.departures,
            "refit_due": self.refit_due,
            "change_at": self.change_at,
        }

    @classmethod
    def from_dict(cls, person_id: int, raw: dict[str, Any]) -> Account:
        if raw.get("version") != STATE_VERSION:
            seen = int(raw.get("model", {}).get("sessions_seen", 0))
            return cls(person_id, HouseholdModel(sessions_seen=seen), refit_due=True)
        return cls(
            person_id,
            HouseholdModel.from_dict(raw["model"]),
            PageHinkley.from_dict(raw["surprise"]),
            Presence.from_dict(raw["presence"]),
            dict(raw["device_sessions"]),
            list(raw["arrivals"]),
            list(raw["departures"]),
            raw["refit_due"],
            raw["change_at"],
        )


def account_model(raw: dict[str, Any]) -> HouseholdModel:
    """The member model inside a saved account state (empty if it is an older layout)."""
    return Account.from_dict(0, raw).model
