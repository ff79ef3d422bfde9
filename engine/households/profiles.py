"""A readable description of each member: typical hours, devices, top categories."""

from __future__ import annotations

import math
from typing import Any

from engine.households.features import DEVICE_TYPES
from engine.households.model import HouseholdModel


def profiles(model: HouseholdModel) -> list[dict[str, Any]]:
    stats = model.stats()
    total = float(stats.n.sum()) or 1.0
    out = []
    for k, member in enumerate(model.member_ids):
        n_k = max(float(stats.n[k]), 1e-9)
        sin, cos = stats.s1[k] / n_k
        hour = (math.atan2(sin, cos) / (2 * math.pi) * 24) % 24
        # Mean resultant length R gives the circular spread: sqrt(-2 ln R) radians.
        resultant = min(max(math.hypot(sin, cos), 1e-6), 1.0)
        spread_h = math.sqrt(-2 * math.log(resultant)) / (2 * math.pi) * 24
        devices = sorted(
            zip(model.devices, stats.devices[k], model.device_types, strict=True),
            key=lambda d: -d[1],
        )
        cats = sorted(zip(model.categories, stats.categories[k], strict=True), key=lambda c: -c[1])
        cat_total = float(stats.categories[k].sum()) or 1.0
        out.append(
            {
                "member": member,
                "share": round(float(stats.n[k]) / total, 3),
                "typical_hour": round(hour, 1),
                "hour_spread": round(min(spread_h, 12.0), 1),
                "weekend_share": round(float(stats.weekend[k, 1]) / n_k, 3),
                "devices": [
                    {"device": d, "type": DEVICE_TYPES[t], "share": round(float(c) / n_k, 3)}
                    for d, c, t in devices[:3]
                    if c / n_k >= 0.05
                ],
                "top_categories": [
                    {"category": c, "share": round(float(v) / cat_total, 3)}
                    for c, v in cats[:3]
                    if v > 0
                ],
            }
        )
    return out
