"""One account's household state: its member model, change detectors and pending work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.households.drift import Novelty, Shares
from engine.households.model import HouseholdModel

# The saved state's layout; a state saved by an older Bond is rebuilt from the account's stored
# sessions by a refit rather than read.
STATE_VERSION = 3


@dataclass
class Account:
    person_id: int
    model: HouseholdModel = field(default_factory=HouseholdModel)
    novelty: Novelty = field(default_factory=Novelty)
    shares: Shares = field(default_factory=Shares)
    # Per browser: the account's session count at its first session, and its sessions since.
    browsers: dict[str, list[int]] = field(default_factory=dict)
    arrivals: list[int] = field(default_factory=list)  # new members not yet judged a join or not
    refit_due: bool = False
    # Set by a newcomer alarm until the refit it asks for: the session counts that looked new.
    newcomer: list[int] | None = None
    change_at: int | None = None  # session count where a recorded leave began, until refit
    dirty: bool = False

    def browsers_since(self, session: int) -> set[str]:
        """Browsers first used at or after the account's `session`-th session."""
        return {device for device, (first, _) in self.browsers.items() if first >= session}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "model": self.model.to_dict(),
            "novelty": self.novelty.to_dict(),
            "shares": self.shares.to_dict(),
            "browsers": self.browsers,
            "arrivals": self.arrivals,
            "refit_due": self.refit_due,
            "newcomer": self.newcomer,
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
            Novelty.from_dict(raw["novelty"]),
            Shares.from_dict(raw["shares"]),
            dict(raw["browsers"]),
            list(raw["arrivals"]),
            raw["refit_due"],
            raw["newcomer"],
            raw["change_at"],
        )


def account_model(raw: dict[str, Any]) -> HouseholdModel:
    """The member model inside a saved account state (empty if it is an older layout)."""
    return Account.from_dict(0, raw).model
