"""Session features: the one place that decides what the household model sees of a session."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from engine.households.sessions import Session

DEVICE_TYPES = ("desktop", "mobile", "tablet")
# Above this many category hits a session's evidence stops growing: a long browse is one person's
# session, not many independent votes, and counting every view makes posteriors overconfident.
CATEGORY_CAP = 10.0

_TABLET = re.compile(r"iPad|Tablet|Nexus (7|9|10)|SM-T\d", re.IGNORECASE)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android|Windows Phone", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SessionFeatures:
    """What the model knows of one session.

    `continuous` is the Gaussian part (hour of day on the unit circle); the weekend flag, device
    and categories are discrete evidence the mixture scores with categorical factors.
    """

    hour_sin: float
    hour_cos: float
    weekend: float
    device: str
    device_type: str
    categories: tuple[tuple[str, float], ...]

    def continuous(self) -> np.ndarray:
        return np.array([self.hour_sin, self.hour_cos])

    @property
    def local_hour(self) -> float:
        return (math.atan2(self.hour_sin, self.hour_cos) / (2 * math.pi) * 24) % 24

    def to_dict(self) -> dict[str, Any]:
        return {
            "hour_sin": self.hour_sin,
            "hour_cos": self.hour_cos,
            "weekend": self.weekend,
            "device": self.device,
            "device_type": self.device_type,
            "categories": [list(c) for c in self.categories],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SessionFeatures:
        return cls(
            raw["hour_sin"],
            raw["hour_cos"],
            raw["weekend"],
            raw["device"],
            raw["device_type"],
            tuple((c, float(n)) for c, n in raw["categories"]),
        )


def session_features(session: Session) -> SessionFeatures:
    """Turn a session into the model's features.

    - local hour of the session's first event, from its IANA time zone (`context.timezone`,
      UTC when missing or unknown), as sin/cos so 23:00 and 01:00 are neighbours;
    - weekend (Saturday or Sunday, local) as 1.0, else 0.0;
    - the device: the browser's anonymous id, and its type (desktop/mobile/tablet) from the user
      agent, which is what a never-seen browser is judged by;
    - the category mix of products viewed or bought, scaled down to at most CATEGORY_CAP hits.
    """
    local = datetime.fromtimestamp(session.start_ms / 1000, _zone(session.timezone))
    hour = local.hour + local.minute / 60
    angle = 2 * math.pi * hour / 24
    total = sum(session.categories.values())
    scale = min(1.0, CATEGORY_CAP / total) if total else 1.0
    return SessionFeatures(
        hour_sin=math.sin(angle),
        hour_cos=math.cos(angle),
        weekend=1.0 if local.weekday() >= 5 else 0.0,
        device=session.device,
        device_type=device_type(session.user_agent),
        categories=tuple(
            sorted((name, round(count * scale, 4)) for name, count in session.categories.items())
        ),
    )


@lru_cache(maxsize=4096)
def device_type(user_agent: str | None) -> str:
    if not user_agent:
        return "desktop"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


@lru_cache(maxsize=512)
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
