"""Sessionising offline as the processor does live: a server's event joins the browsing."""

from __future__ import annotations

from engine.households.sessions import RawEvent, sessionise

MINUTE = 60_000


def test_an_event_the_shops_server_sent_joins_the_persons_session_or_none() -> None:
    def event(anonymous_id: str | None, minute: int, person: int = 1) -> RawEvent:
        products = [{"category": "books"}]
        return RawEvent(person, anonymous_id, minute * MINUTE, properties={"products": products})

    sessions = sessionise(
        [
            event("laptop", 0),
            event("phone", 2, person=2),  # someone else's, browsing later
            event(None, 5),  # the order the laptop's checkout placed, sent by the shop
            event(None, 120),  # a renewal, nobody browsing
        ]
    )
    assert sorted((s.device, s.events, dict(s.categories)) for s in sessions) == [
        ("laptop", 2, {"books": 2}),
        ("phone", 1, {"books": 1}),
    ]
