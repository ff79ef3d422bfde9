from __future__ import annotations

import math
from collections import Counter

from engine.households.features import CATEGORY_CAP, device_type, session_features
from engine.households.sessions import RawEvent, Session, sessionise

# Saturday 2024-01-06 20:30 UTC is 15:30 in New York and 05:30 on Sunday in Tokyo.
SATURDAY_2030_UTC = 1_704_573_000_000
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"


def _session(timezone: str | None, **kw: object) -> Session:
    return Session(
        device="anon-1",
        person_id=1,
        start_ms=SATURDAY_2030_UTC,
        last_ms=SATURDAY_2030_UTC,
        timezone=timezone,
        **kw,  # type: ignore[arg-type]
    )


def test_local_hour_and_weekend_come_from_the_events_time_zone() -> None:
    new_york = session_features(_session("America/New_York"))
    assert math.isclose(new_york.local_hour, 15.5, abs_tol=1e-6)
    assert new_york.weekend == 1.0
    tokyo = session_features(_session("Asia/Tokyo"))
    assert math.isclose(tokyo.local_hour, 5.5, abs_tol=1e-6)
    assert tokyo.weekend == 1.0


def test_an_unknown_or_missing_time_zone_falls_back_to_utc() -> None:
    for zone in (None, "Mars/Olympus_Mons"):
        assert math.isclose(session_features(_session(zone)).local_hour, 20.5, abs_tol=1e-6)


def test_hours_are_on_the_circle_so_midnight_neighbours_are_close() -> None:
    after_midnight = _session("UTC")
    after_midnight.start_ms = 1_704_499_200_000 + 30 * 60_000  # 00:30
    before_midnight = _session("UTC")
    before_midnight.start_ms = 1_704_499_200_000 - 30 * 60_000  # 23:30
    a, b = session_features(after_midnight), session_features(before_midnight)
    assert math.hypot(a.hour_sin - b.hour_sin, a.hour_cos - b.hour_cos) < 0.3


def test_device_type_from_user_agent() -> None:
    assert device_type(IPHONE) == "mobile"
    assert device_type("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X)") == "tablet"
    assert device_type("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0") == "desktop"
    assert device_type(None) == "desktop"


def test_category_mix_is_capped_so_a_long_browse_is_one_vote() -> None:
    f = session_features(_session("UTC", categories=Counter({"books": 30, "garden": 10})))
    total = sum(n for _, n in f.categories)
    assert math.isclose(total, CATEGORY_CAP, rel_tol=1e-3)
    assert dict(f.categories)["books"] > dict(f.categories)["garden"]


def test_sessions_split_on_a_thirty_minute_gap_per_browser() -> None:
    def event(anon: str, minute: int, category: str) -> RawEvent:
        return RawEvent(
            person_id=1,
            anonymous_id=anon,
            timestamp=minute * 60_000,
            properties={"category": category},
            context={"timezone": "UTC"},
        )

    events = [
        event("a", 0, "books"),
        event("b", 1, "toys"),
        event("a", 20, "books"),
        event("a", 55, "garden"),  # 35 minutes after the last one on browser a
        event("b", 25, "toys"),
    ]
    sessions = sessionise(sorted(events, key=lambda e: e.timestamp))
    shapes = sorted((s.device, s.events, dict(s.categories)) for s in sessions)
    assert shapes == [
        ("a", 1, {"garden": 1}),
        ("a", 2, {"books": 2}),
        ("b", 2, {"toys": 2}),
    ]


def test_order_products_count_as_categories() -> None:
    events = [
        RawEvent(
            1,
            "a",
            0,
            properties={"products": [{"category": "Toys"}, {"category": "books"}, "junk"]},
        )
    ]
    (session,) = sessionise(events)
    assert session.categories == Counter({"toys": 1, "books": 1})
