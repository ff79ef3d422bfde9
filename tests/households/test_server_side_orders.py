"""Orders the shop's server sends, as Segment recommends, judged on the shopper's own browsing.

The storefront runs Bond's SDK; the shop's backend sends `Order Completed` through Segment's
Python library with the user id alone: no anonymous id, no user agent, no time zone. A real
collector, worker and read API over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import (
    WRITE_KEY,
    Collector,
    ReadApi,
    Worker,
    segment_client,
    start_together,
    stop_together,
    wait_until,
)

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
START = 20_601 * DAY  # a midnight UTC
ACCOUNT = "u-family"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
# Two people on one account, at 08:00 and 20:00 in New York (13:00 and 01:00 UTC), each viewing
# their own things; now and then each orders a gift, which says nothing of who they are.
PEOPLE = (("desk", DESKTOP, 13, "electronics", 7), ("phone", IPHONE, 25, "fashion", 5))


@pytest.fixture
def stack(data_dir: Path) -> Iterator[tuple[Collector, ReadApi]]:
    collector, worker, api = Collector(data_dir), Worker(data_dir), ReadApi(data_dir)
    start_together(collector, worker, api)
    yield collector, api
    stop_together(api, worker, collector)


def moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def views(browser: str, agent: str, at: int, category: str) -> list[dict[str, Any]]:
    """Four product views as Bond's SDK sends them."""
    context = {
        "page": {"url": "https://shop.example/p", "path": "/p"},
        "userAgent": agent,
        "timezone": "America/New_York",
        "library": {"name": "bond.js", "version": "1"},
    }
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "messageId": str(uuid.uuid4()),
            "anonymousId": browser,
            "userId": ACCOUNT,
            "timestamp": moment(at + i * MINUTE).isoformat(),
            "properties": {"category": category},
            "context": context,
        }
        for i in range(4)
    ]


def test_a_server_sent_order_is_judged_on_the_session_it_was_placed_in(
    stack: tuple[Collector, ReadApi],
) -> None:
    collector, api = stack
    shop, failures = segment_client(collector, sync_mode=True)
    browsed: list[dict[str, Any]] = []

    def order(order_id: str, at: int) -> None:
        # What the browsers sent before it reaches the log first, as it would live.
        response = httpx.post(
            f"{collector.url}/v1/batch",
            content=orjson.dumps({"writeKey": WRITE_KEY, "batch": browsed}),
            headers={"Content-Type": "text/plain", "Origin": "https://shop.example"},
        )
        assert response.status_code == 200, response.text
        browsed.clear()
        properties = {"order_id": order_id, "total": 40, "currency": "USD"}
        properties["products"] = [{"category": "gifts", "price": 40}]
        shop.track(ACCOUNT, "Order Completed", properties, timestamp=moment(at))

    whose: dict[str, str] = {}
    for day in range(21):
        for browser, agent, hour, category, every in PEOPLE:
            at = START + day * DAY + hour * HOUR + (day * 7 % 11) * MINUTE
            browsed += views(browser, agent, at, category)
            if day % every == every - 1:
                whose[f"{browser}-{day}"] = browser
                order(f"{browser}-{day}", at + 5 * MINUTE)
    # A renewal the shop's server sends at noon, with nobody browsing: nothing to judge it on.
    order("renewal", START + 21 * DAY + 17 * HOUR)
    assert failures == []

    wait_until(lambda: api.get("/status").json()["lag"] == 0, what="the worker")
    person = api.get("/persons", user_id=ACCOUNT).json()
    household: dict[str, Any] = api.get(f"/persons/{person['id']}/household").json()

    # The browsers are the account's only devices: the shop's server is none of them.
    members = household["members"]
    assert {d["device"] for m in members for d in m["devices"]} == {"desk", "phone"}
    browser_of = {m["member"]: m["devices"][0]["device"] for m in members}
    assert sorted(browser_of.values()) == ["desk", "phone"]
    judged = {a["order_id"]: browser_of.get(a["member"]) for a in household["attributions"]}
    assert set(judged) == set(whose)  # not the renewal
    # Every order once the account has nine days behind it (before, it is one member).
    settled = [o for o in whose if int(o.split("-")[1]) >= 9]
    assert {o: judged[o] for o in settled} == {o: whose[o] for o in settled}
