"""Rules evaluated by the real worker: which alerts reach the outbox, once, in its transaction."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alert_support import AlertEngine

from bond.config import AlertRule
from bond.errors import ConfigError
from engine.alerts.rules import Condition, compile_rules
from engine.hooks import AppliedEvent, IdentityChange

T = 1_700_000_000_000
MINUTE = 60_000
DAY = 24 * 60 * MINUTE
BIG = AlertRule(name="big checkout", kind="identified", threshold=500)


@pytest.fixture
def engine_for(tmp_path: Path) -> Iterator[Any]:
    engines: list[AlertEngine] = []

    def make(*rules: AlertRule, **kwargs: Any) -> AlertEngine:
        engines.append(AlertEngine(tmp_path / "bond-data", *rules, **kwargs))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


def browse_and_add(engine: AlertEngine, price: float, *, anon: str = "browser-1") -> None:
    engine.send("page", anon=anon, ts=T, properties={"path": "/"})
    engine.send("page", anon=anon, ts=T + 1 * DAY, properties={"path": "/shoes"})
    engine.send(
        "track",
        anon=anon,
        ts=T + DAY + MINUTE,
        event="Product Viewed",
        properties={"name": "Trail Shoe", "category": "Shoes", "price": price},
    )
    engine.send(
        "track",
        anon=anon,
        ts=T + DAY + 2 * MINUTE,
        event="Product Added",
        properties={"name": "Trail Shoe", "category": "Shoes", "price": price, "quantity": 2},
    )


def cheap_cart_then_identify(engine: AlertEngine) -> None:
    """A cart well under BIG's threshold, then Bo identifies: no alert until an order."""
    browse_and_add(engine, 50)
    engine.send("identify", ts=T + DAY + 3 * MINUTE, traits={"email": "bo@example.com"})


def order(engine: AlertEngine, minute: int, total: object) -> None:
    """An Order Completed `minute` minutes into the day after the first visit."""
    engine.send(
        "track",
        ts=T + DAY + minute * MINUTE,
        event="Order Completed",
        properties={"total": total, "currency": "EUR"},
    )


def fields_of(alert: Any) -> dict[str, str]:
    return {f["name"]: f["value"] for f in alert.payload["embeds"][0]["fields"]}


def test_a_valuable_visitor_identifying_gives_one_alert_with_their_stitched_history(
    engine_for: Any,
) -> None:
    engine = engine_for(BIG)
    browse_and_add(engine, 300)
    engine.apply()
    assert engine.alerts() == []
    engine.send(
        "identify",
        ts=T + DAY + 3 * MINUTE,
        userId="u-1",
        traits={"email": "Ann@Example.com", "name": "Ann Lee"},
    )
    engine.apply()
    [alert] = engine.alerts()
    assert (alert.rule, alert.kind, alert.state) == ("big checkout", "identified", "pending")
    assert alert.caused_at == T + DAY + 3 * MINUTE
    [embed] = alert.payload["embeds"]
    assert "Ann Lee (ann@example.com)" in embed["title"]
    fields = dict((f["name"], f["value"]) for f in embed["fields"])
    assert fields["Value"] == "600.00"
    assert fields["Anonymous visits"] == "2"
    assert fields["Page views"] == "2"
    assert fields["First seen"] == "2023-11-14 22:13 UTC"
    assert fields["Top products"] == "Trail Shoe"
    assert r"Product Added\: Trail Shoe" in embed["description"]
    # The same person identifying again, on another browser, within the cooldown: no new alert.
    engine.send("identify", anon="browser-2", ts=T + DAY + 9 * MINUTE, userId="u-1")
    engine.apply()
    assert len(engine.alerts()) == 1


def test_below_the_threshold_nothing_until_the_order_that_crosses_it(engine_for: Any) -> None:
    engine = engine_for(BIG)
    cheap_cart_then_identify(engine)
    engine.apply()
    assert engine.alerts() == []
    order(engine, 5, 720)
    engine.apply()
    [alert] = engine.alerts()
    fields = fields_of(alert)
    assert fields["Value"] == "720.00 EUR"
    assert fields["Lifetime value"] == "720.00 EUR"


def test_without_a_cooldown_one_identification_gives_one_alert(engine_for: Any) -> None:
    # The cart and the identify in one batch, at one time: the identification fires the rule,
    # and the cart, made before it, must not fire it again.
    engine = engine_for(replace(BIG, cooldown_s=0))
    engine.send("track", ts=T, event="Product Added", properties={"price": 600, "quantity": 1})
    engine.send("identify", ts=T, traits={"email": "dee@example.com"})
    engine.apply()
    assert len(engine.alerts()) == 1


def test_an_order_amount_that_is_not_a_finite_number_counts_as_none(engine_for: Any) -> None:
    # float() reads "NaN" and "Infinity": summed in, either would make the lifetime value NaN,
    # which is false against every threshold.
    engine = engine_for(BIG)
    cheap_cart_then_identify(engine)
    for minute, total in ((4, "NaN"), (5, "Infinity"), (6, 720)):
        order(engine, minute, total)
    engine.apply()
    [alert] = engine.alerts()
    assert fields_of(alert)["Lifetime value"] == "720.00 EUR"


def test_event_rules_match_name_and_conditions_with_a_per_person_cooldown(
    engine_for: Any,
) -> None:
    rule = AlertRule(
        name="large order",
        kind="event",
        event="Order Completed",
        where=("value >= 500", "currency == 'EUR'"),
        cooldown_s=3600,
    )
    engine = engine_for(rule)
    order = {"event": "Order Completed"}
    engine.send("track", ts=T, properties={"value": 100, "currency": "EUR"}, **order)
    engine.send("track", ts=T + 1, properties={"value": 900, "currency": "USD"}, **order)
    engine.send("track", ts=T + 2, properties={"value": "650", "currency": "EUR"}, **order)
    engine.send("track", ts=T + 3, properties={"value": 999, "currency": "EUR"}, **order)
    engine.send("track", anon="b2", ts=T + 4, properties={"value": 501, "currency": "EUR"}, **order)
    engine.apply()
    alerts = engine.alerts()
    assert len(alerts) == 2  # the third is the first person's again, within the hour
    values = [fields_of(a) for a in alerts]
    assert [v["value"] for v in values] == ["650", "501"]
    engine.send("track", ts=T + 2 * 3600_000, properties={"value": 700, "currency": "EUR"}, **order)
    engine.apply()
    assert len(engine.alerts()) == 3


def test_a_watched_person_coming_back_after_being_away_is_announced(engine_for: Any) -> None:
    rule = AlertRule(name="acme", kind="returned", domains=("acme.example",), away_s=7 * 86400)
    engine = engine_for(rule)
    engine.send("identify", ts=T, traits={"email": "cto@acme.example"})
    engine.send("page", ts=T + 2 * DAY, properties={"path": "/pricing"})
    engine.apply()
    assert engine.alerts() == []  # two days away is not a return
    engine.send("page", ts=T + 12 * DAY, properties={"path": "/pricing"})
    engine.send("page", ts=T + 12 * DAY + MINUTE, properties={"path": "/docs"})
    engine.send("identify", anon="other", ts=T + 20 * DAY, traits={"email": "x@other.example"})
    engine.apply()
    [alert] = engine.alerts()
    assert alert.kind == "returned"
    fields = fields_of(alert)
    assert fields["Away for"] == "10.0 days"


def test_an_order_the_shops_server_sends_is_no_return(engine_for: Any) -> None:
    rule = AlertRule(name="acme", kind="returned", domains=("acme.example",), away_s=7 * 86400)
    engine = engine_for(rule)
    engine.send("identify", ts=T, userId="cto-1", traits={"email": "cto@acme.example"})
    engine.apply()
    # A month later the subscription renews: the shop's server sends the order, no browser.
    order = {"event": "Order Completed", "properties": {"total": 99, "currency": "EUR"}}
    engine.send("track", anon=None, ts=T + 30 * DAY, userId="cto-1", **order)
    engine.apply()
    assert engine.alerts() == []
    engine.send("page", ts=T + 31 * DAY, properties={"path": "/pricing"})
    engine.apply()
    assert [alert.kind for alert in engine.alerts()] == ["returned"]


def test_a_visitor_named_everyone_pings_nobody(engine_for: Any) -> None:
    engine = engine_for(AlertRule(name="anyone", kind="identified", threshold=0))
    name = "@everyone **FREE** [prize](https://evil.example) <@&1>"
    engine.send("identify", ts=T, traits={"email": "@here@example.com", "name": name})
    engine.apply()
    [alert] = engine.alerts()
    assert alert.payload["allowed_mentions"] == {"parse": []}
    title = alert.payload["embeds"][0]["title"]
    assert "everyone" in title
    assert not re.search(r"@(everyone|here)|(?<!\\)<@&?\d|(?<!\\)\]\(http", title)


class Boom:
    """A hook after the alerts hook that fails the batch, as a crash mid-batch would."""

    name = "boom"
    armed = True

    def migrate(self, conn: sqlite3.Connection) -> None:
        pass

    def on_identity(self, conn: sqlite3.Connection, change: IdentityChange) -> None:
        pass

    def on_events(self, conn: sqlite3.Connection, events: Sequence[AppliedEvent]) -> None:
        if self.armed:
            raise RuntimeError("crash after the alert was enqueued")


def test_an_alert_exists_exactly_when_its_batch_committed(tmp_path: Path) -> None:
    boom = Boom()
    engine = AlertEngine(tmp_path / "bond-data", BIG, hooks=[boom])
    # The worker calls hooks in order; put the failing one after the alerts hook.
    engine.worker.hooks.reverse()
    try:
        browse_and_add(engine, 400)
        engine.send("identify", ts=T + DAY + 3 * MINUTE, traits={"email": "cy@example.com"})
        with pytest.raises(RuntimeError):
            engine.apply()
        assert engine.alerts() == []
        boom.armed = False
        engine.apply()
        engine.apply()
        assert len(engine.alerts()) == 1
    finally:
        engine.close()


def test_conditions_parse_or_stop_the_worker_at_start() -> None:
    assert Condition.parse("product.price > 10", "r").holds({"product": {"price": "12.5"}})
    assert not Condition.parse("value >= 10", "r").holds({"value": "n/a"})
    assert Condition.parse("coupon == true", "r").holds({"coupon": True})
    assert Condition.parse('plan != "free"', "r").holds({"plan": "pro"})
    for bad in ("value >>= 3", "value >= big", "plan > 'pro'", "=="):
        with pytest.raises(ConfigError):
            compile_rules((AlertRule(name="r", kind="event", event="e", where=(bad,)),))


def test_an_event_alert_shows_properties_that_are_not_strings_as_the_dashboard_does(
    engine_for: Any,
) -> None:
    rule = AlertRule(name="orders", kind="event", event="Order Completed", cooldown_s=0)
    engine = engine_for(rule)
    props = {"order_id": {"ref": "A-7"}, "gift": True, "note": None, "value": 12.5}
    engine.send("track", ts=T, event="Order Completed", properties=props)
    engine.apply()
    [alert] = engine.alerts()
    assert fields_of(alert) == {
        "order\\_id": '{"ref"\\:"A\\-7"}',
        "gift": "true",
        "note": "null",
        "value": "12.5",
    }
