"""Stitches: identifications with what they brought along, refusals with their reason, pages
newest first and the feed's window oldest first."""

from __future__ import annotations

from pathlib import Path

from engine.dashboard.stitches import stitches_after, stitches_page
from tests.engine.dashboard.dashboard_support import HookedEngine, dashboard, log_in


def visitors(engine: HookedEngine, n: int) -> None:
    """n browsers, each with three anonymous events and then an identify a minute later."""
    for i in range(n):
        start = 1_000_000 * (i + 1)
        for k in range(3):
            engine.page(f"b{i}", start + k, "/")
        engine.identify(f"b{i}", start + 60_000, email=f"p{i}@example.com")
    engine.run()


def test_an_identification_says_what_it_stitched_and_how_long_after_the_first_visit(
    data_dir: Path,
) -> None:
    engine = HookedEngine(data_dir)
    visitors(engine, 1)
    engine.identify("b0", 2_000_000, email="someone.else@example.com")
    engine.run()

    page = stitches_page(engine.reader, 10, None)

    refused, identified = page["stitches"]
    assert identified["kind"] == "identified"
    assert identified["person"]["name"] == "p0@example.com"
    assert identified["anonymous_events_stitched"] == 3
    assert identified["browsers_stitched"] == 1
    assert identified["after_first_visit_ms"] == 60_000
    assert refused["reason"] == "shared_browser"
    assert refused["explanation"].startswith("a second person logged in")
    assert {refused["person"]["name"], refused["other"]["name"]} == {
        "someone.else@example.com",
        "p0@example.com",
    }
    assert page["counts"] == {"identified": 1, "refused": 1}
    assert page["next"] is None
    engine.close()


def test_pages_go_back_in_time_and_the_feed_forward(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    visitors(engine, 7)

    first = stitches_page(engine.reader, 3, None)
    second = stitches_page(engine.reader, 3, first["next"])
    third = stitches_page(engine.reader, 3, second["next"])
    ids = [c["id"] for page in (first, second, third) for c in page["stitches"]]
    assert ids == [7, 6, 5, 4, 3, 2, 1]
    assert third["next"] is None

    after, cursor = stitches_after(engine.reader, 2, 3)
    assert ([c["id"] for c in after], cursor) == ([3, 4, 5], 5)
    after, cursor = stitches_after(engine.reader, cursor, 3)
    assert ([c["id"] for c in after], cursor) == ([6, 7], 7)
    assert stitches_after(engine.reader, cursor, 3) == ([], 7)
    engine.close()


def test_the_api_pages_by_the_cursor_it_gave_and_explains_a_bad_one(data_dir: Path) -> None:
    engine = HookedEngine(data_dir)
    visitors(engine, 3)
    with dashboard(engine.config) as client:
        log_in(client)
        first = client.get("/dashboard/api/stitches", params={"limit": 2}).json()
        rest = client.get("/dashboard/api/stitches", params={"before": first["next"]}).json()
        assert [c["id"] for c in first["stitches"] + rest["stitches"]] == [3, 2, 1]
        for bad, reason in (("x", "must be an integer"), (str(2**70), "is out of range")):
            response = client.get("/dashboard/api/stitches", params={"before": bad})
            assert (response.status_code, response.json()["reason"]) == (400, f"before {reason}")
    engine.close()
