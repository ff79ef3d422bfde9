"""The live stream: raw events from the log in arrival order, each with the person it belongs
to once the worker has applied it."""

from __future__ import annotations

from pathlib import Path

from engine.dashboard.live import LogTail, live_events
from tests.engine.dashboard.dashboard_support import HookedEngine, dashboard, log_in

XSS = "<img src=x onerror=alert(1)>"


def test_each_event_comes_with_its_page_its_detail_and_its_person(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    engine.page("laptop", 1_000, "/catalogue.html", "?category=plants")
    engine.view("laptop", 2_000, XSS)
    engine.identify("laptop", 3_000, email="ada@example.com")
    engine.order("laptop", 4_000, "FK-1", 1234.5)
    engine.run()
    tail = LogTail(engine.config.events_db)

    shown = live_events(tail.latest(10), engine.reader, engine.worker.offset)

    assert [(e["type"], e["name"], e["page"], e["detail"]) for e in shown] == [
        ("page", "/catalogue.html · Fern & Kiln", "/catalogue.html?category=plants", None),
        ("track", "Product Viewed", None, XSS),  # as sent: the page puts it in as text
        ("identify", None, None, None),
        ("track", "Order Completed", None, None),
    ]
    # An order's value goes as a number with its currency: the page formats money one way.
    assert [(e["value"], e["currency"]) for e in shown] == [(None, None)] * 3 + [(1234.5, "EUR")]
    # The events before the identify belong to Ada now: the live stream shows who they were.
    assert {e["person"]["name"] for e in shown} == {"ada@example.com"}
    assert all(e["identified"] for e in shown)
    assert [e["seq"] for e in shown] == [1, 2, 3, 4]
    engine.close()


def test_an_event_the_worker_has_not_applied_yet_has_no_person(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    engine.page("laptop", 1_000, "/")
    engine.run()
    engine.page("phone", 2_000, "/")
    engine.send("track", user="u-7", ts=3_000, event="Signed In")
    tail = LogTail(engine.config.events_db)

    shown = live_events(tail.after(0), engine.reader, engine.worker.offset)

    assert [(e["anonymous_id"], e["person"] is not None, e["identified"]) for e in shown] == [
        ("laptop", True, False),
        ("phone", False, False),
        (None, False, True),  # not applied, but a user id is someone
    ]
    assert shown[0]["person"]["name"] is None  # an anonymous visitor has no name yet
    engine.close()


def test_before_the_collector_made_the_log_there_is_nothing_and_nothing_is_created(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    tail = LogTail(path)
    assert (tail.head(), tail.after(0), tail.latest()) == (0, [], [])
    assert not path.exists()


def test_latest_reads_only_the_newest_page_of_a_long_log(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    for ts in range(1, 301):
        engine.page(f"b{ts % 7}", ts, f"/p{ts}")
    tail = LogTail(engine.config.events_db)
    assert [e.seq for e in tail.latest(5)] == [296, 297, 298, 299, 300]
    assert [e.seq for e in tail.after(298)] == [299, 300]
    engine.close()


def test_the_first_page_says_where_the_stream_carries_on(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    for ts in range(1, 8):
        engine.page("laptop", ts, f"/p{ts}")
    engine.identify("laptop", 10, email="ada@example.com")
    engine.run()
    with dashboard(engine.config) as client:
        log_in(client)
        page = client.get("/dashboard/api/live", params={"limit": 3}).json()
    assert [e["seq"] for e in page["events"]] == [8, 7, 6]  # newest first
    assert page["position"] == "8.1"  # the last event shown, the newest identity event
    engine.close()
