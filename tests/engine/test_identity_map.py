"""The identity map: every stored event joins one row of it, and that row names the person whose
timeline holds the event; pages and snapshots while the worker writes; cursors, auth, the CLI."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bond.cli import main
from conftest import ROOT, WRITE_KEY, Collector, ReadApi, wait_until
from engine.identity_map import open_map_state, read_page, snapshot
from engine.store import MAX_TS
from tests.engine.harness import Engine
from tests.engine.privacy.privacy_support import T0, iso, post


def event(n: float, type_: str, anon: str | None, user: str | None = None, **fields: Any) -> Any:
    message = {"type": type_, "messageId": f"m-{n}", "timestamp": iso(T0 + int(1000 * n)), **fields}
    if anon is not None:
        message["anonymousId"] = anon
    if user is not None:
        message["userId"] = user
    return message


def joined(rows: list[dict[str, Any]], anon: str | None, user: str | None, ts: int) -> Any:
    """The rows an event joins, as a warehouse would: by its anonymous id (else its user id,
    on the rows of server-side streams) and its time within [from_ts, to_ts)."""
    return [
        row
        for row in rows
        if (row["anonymous_id"] == anon if anon else row["anonymous_id"] is None)
        and (anon or row["user_id"] == user)
        and (row["from_ts"] is None or row["from_ts"] <= ts)
        and (row["to_ts"] is None or ts < row["to_ts"])
    ]


def test_every_stored_event_joins_the_person_whose_timeline_holds_it(
    collector: Collector, worker: object, read_api: ReadApi
) -> None:
    sent = post(
        collector,
        [
            # A retroactive stitch: an anonymous visit, then a login; and cy's second browser.
            event(1, "page", "laptop", properties={"url": "/"}),
            event(2, "track", "laptop", event="Product Viewed"),
            event(3, "identify", "laptop", "cy", traits={"email": "cy@example.com"}),
            event(4, "track", "laptop", "cy", event="Order Completed"),
            event(5, "track", "phone", event="Product Viewed"),
            event(6, "identify", "phone", "cy"),
            # A shared computer without reset(): ada, then bob, then ada again.
            event(7, "track", "kiosk", event="Product Viewed"),
            event(8, "identify", "kiosk", "ada"),
            event(9, "track", "kiosk", event="Cart Viewed"),
        ],
    )
    assert sent.status_code == 200, sent.text
    sent = post(
        collector,
        [
            event(10, "identify", "kiosk", "bob"),
            event(11, "track", "kiosk", event="Cart Viewed"),
            event(12, "track", "kiosk", "ada", event="Order Completed"),
            event(13, "page", "kiosk"),
            # Bob's event from before his login, sent late: his range grows back to it.
            event(9.5, "track", "kiosk", "bob", event="Coupon Applied"),
            # A tablet's anonymous visit joined to ada by an alias from the site's server.
            event(14, "track", "tablet", event="Product Viewed"),
            event(15, "page", "tablet"),
            event(16, "alias", None, "ada", previousId="tablet"),
            # Nobody ever logs in on this one.
            event(17, "page", "lurker"),
            event(18, "track", "lurker", event="Product Viewed"),
            # Server-side only, and an anonymous event of the laptop that arrives late.
            event(19, "track", None, "bob", event="Refund Issued"),
            event(-5, "page", "laptop"),
        ],
    )
    assert sent.status_code == 200, sent.text
    with sqlite3.connect(collector.data_dir / "events.db") as log_:
        stored = log_.execute("SELECT seq, anonymous_id, user_id, timestamp FROM events").fetchall()
    assert len(stored) == 21
    head = max(seq for seq, *_ in stored)
    wait_until(lambda: read_api.get("/status").json()["offset"] == head, what="the worker")

    rows: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"after": cursor} if cursor else {})}
        response = read_api.get("/identity-map", **params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["as_of"] == head
        rows += page["rows"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages >= 4

    # Whose each event is, from the persons' stitched timelines.
    owner_of_seq: dict[int, int] = {}
    for person_id in {row["person_id"] for row in rows}:
        before: str | None = None
        while True:
            params = {"limit": "500", **({"before": before} if before else {})}
            timeline = read_api.get(f"/persons/{person_id}/timeline", **params).json()
            assert timeline["person_id"] == person_id  # already the surviving person
            for item in timeline["events"]:
                assert item["seq"] not in owner_of_seq
                owner_of_seq[item["seq"]] = person_id
            before = timeline["next"]
            if before is None:
                break
    for seq, anon, user, ts in stored:
        matches = joined(rows, anon, user, ts)
        assert len(matches) == 1, (seq, anon, user, ts, matches)
        assert matches[0]["person_id"] == owner_of_seq[seq]

    def person(user_id: str) -> int:
        found = read_api.get("/persons", user_id=user_id).json()
        return int(found["id"])

    ada, bob, cy = person("ada"), person("bob"), person("cy")
    by_browser: dict[str | None, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_browser.setdefault(row["anonymous_id"], []).append(
            (row["from_ts"], row["to_ts"], row["person_id"], row["user_id"], row["identified"])
        )
    assert by_browser["kiosk"] == [
        (None, T0 + 9_500, ada, "ada", True),
        # One range, though the late event made it of two segments.
        (T0 + 9_500, T0 + 12_000, bob, "bob", True),
        (T0 + 12_000, None, ada, "ada", True),
    ]
    assert by_browser["laptop"] == by_browser["phone"] == [(None, None, cy, "cy", True)]
    assert by_browser["tablet"] == [(None, None, ada, "ada", True)]
    [(_, _, lurker, user_id, identified)] = by_browser["lurker"]
    assert (user_id, identified) == (None, False)
    assert lurker not in (ada, bob, cy)
    assert set(by_browser[None]) == {
        (None, None, ada, "ada", True),
        (None, None, bob, "bob", True),
    }
    # No emails: user ids are what a warehouse joins on.
    assert b"example.com" not in orjson.dumps(rows)


@pytest.fixture
def api(engine: Engine) -> Iterator[ReadApi]:
    """A real `bond api` on a state of three anonymous browsers."""
    for n in range(3):
        engine.track(f"b{n}", 100 + n)
    engine.run()
    running = ReadApi(engine.config.data_dir).start()
    yield running
    running.stop()


def test_only_the_admin_token_reads_the_map(api: ReadApi) -> None:
    for headers, status, reason in [
        ({}, 401, "Authorization: Bearer"),
        ({"Authorization": f"Bearer {WRITE_KEY}"}, 403, "write key"),
        ({"Authorization": "Bearer guess"}, 403, "not the admin token"),
    ]:
        response = httpx.get(f"{api.url}/identity-map", headers=headers, timeout=5)
        assert response.status_code == status
        assert reason in response.json()["reason"]
    assert api.get("/identity-map").status_code == 200


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_bad_cursor_or_limit_is_refused_with_the_reason(api: ReadApi) -> None:
    cursor = (
        "after must be the 'next' of a previous identity-map page (leave it out to start at the "
        "beginning)"
    )
    limit = "limit must be a whole number from 1 to 10,000"
    for params, reason in [
        ({"after": "not a cursor!"}, cursor),
        ({"after": "bWFwMTph=="}, cursor),  # bad padding
        ({"after": _b64(b"a:b0")}, cursor),  # no version
        ({"after": _b64(b"map1:x:b0")}, cursor),  # no browser's key
        ({"after": _b64(b"map1:a:\xff")}, cursor),  # not UTF-8
        ({"after": "1780000080000:1003"}, cursor),  # a timeline's cursor
        ({"limit": "0"}, limit),
        ({"limit": "10001"}, limit),
        ({"limit": "-1"}, limit),
        ({"limit": "99999999999999999999999"}, limit),
    ]:
        response = api.get("/identity-map", **params)
        assert response.status_code == 400, params
        assert response.json() == {"error": "bad_request", "reason": reason}


def test_pages_follow_the_cursor_to_the_end(api: ReadApi) -> None:
    first = api.get("/identity-map", limit="2").json()
    assert [r["anonymous_id"] for r in first["rows"]] == ["b0", "b1"]
    last = api.get("/identity-map", limit="2", after=first["next"]).json()
    # The last browser fills the page exactly: no cursor to an empty page.
    assert [r["anonymous_id"] for r in last["rows"]] == ["b2"]
    assert last["next"] is None
    whole = api.get("/identity-map", limit="3").json()
    assert whole["next"] is None
    assert whole["rows"] == first["rows"] + last["rows"]


def ranges_partition_time(rows: list[dict[str, Any]]) -> bool:
    """Each browser's rows, in order, start unbounded, meet end to start, end unbounded."""
    by_browser: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["anonymous_id"], row["user_id"] if row["anonymous_id"] is None else None)
        by_browser.setdefault(key, []).append(row)
    for ranges in by_browser.values():
        bounds = [(r["from_ts"], r["to_ts"]) for r in ranges]
        if bounds[0][0] is not None or bounds[-1][1] is not None:
            return False
        if any(a[1] != b[0] for a, b in itertools.pairwise(bounds)):
            return False
    return True


def test_a_paged_pull_gives_each_browser_once_and_whole_while_the_worker_splits_them(
    engine: Engine,
) -> None:
    for n in range(12):
        engine.track(f"pc-{n:02}", 100)
        engine.identify(f"pc-{n:02}", 200, user=f"first-{n}")
        if n % 3 == 1:  # shared already: two ranges, which a page of 3 rows would cut
            engine.identify(f"pc-{n:02}", 250, user=f"second-{n}")
    engine.run()
    conn = open_map_state(engine.config)
    there = {row["anonymous_id"] for row in read_page(conn, 100).rows}

    rows: list[dict[str, Any]] = []
    offsets: list[int] = []
    after: str | None = None
    for written in range(1, 100):
        page = read_page(conn, 3, after)
        rows += page.rows
        offsets.append(page.as_of)
        # Between pages a second person logs in on a browser already read and on one not yet
        # read (each splits in two), and new browsers come.
        for n in (written - 1, written + 3):
            engine.identify(f"pc-{n % 12:02}", 300 + written, user=f"next-{written}")
        engine.track(f"pc-new-{written:02}", 300 + written)
        engine.run()
        if page.next is None:
            break
        after = page.next

    browsers = [row["anonymous_id"] for row in rows]
    # Each browser once, in key order: its rows are together, never cut across pages.
    runs = [browser for browser, _ in itertools.groupby(browsers)]
    assert runs == sorted(set(browsers))
    assert there <= set(browsers)
    assert ranges_partition_time(rows)
    assert any(b.startswith("pc-new-") for b in browsers)  # came during the pull
    assert offsets == sorted(offsets)
    # A browser read after its split shows it.
    split = [r for r in rows if r["anonymous_id"] == "pc-05"]
    assert len(split) > 1


def test_a_full_pull_is_one_snapshot_whatever_the_worker_writes_meanwhile(
    engine: Engine,
) -> None:
    for n in range(6):
        engine.track(f"pc-{n}", 100)
        engine.identify(f"pc-{n}", 200, user=f"u{n}")
    engine.track("zz-anonymous", 100)
    engine.run()
    conn = open_map_state(engine.config)
    with snapshot(conn) as before:
        expected = list(before.rows)

    with snapshot(conn, page=1) as taken:
        rows = [next(taken.rows)]
        # The worker splits a browser not read yet, identifies the anonymous one and adds one.
        engine.identify("pc-4", 300, user="guest")
        engine.identify("zz-anonymous", 300, user="late")
        engine.track("pc-9", 300)
        engine.run()
        rows += list(taken.rows)
    assert taken.as_of == before.as_of
    assert rows == expected

    with snapshot(conn) as after:
        now = list(after.rows)
    assert after.as_of > before.as_of
    assert now != expected
    assert ranges_partition_time(now)


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bond.cli", "--data-dir", str(data_dir), "identity-map", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_writes_the_map_as_json_lines_and_as_spreadsheet_safe_csv(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    # Ids a visitor chose: a spreadsheet would run the first two as formulas.
    hostile = '=HYPERLINK("http://evil.example","click")'
    engine.track(hostile, 100)
    engine.identify(hostile, 200, user="-2+3")
    engine.track("'quoted", 100)
    engine.track("kiosk", 100)
    engine.identify("kiosk", 200, user="ada")
    engine.identify("kiosk", 300, user="bob")
    engine.send("track", user="srv", ts=150)
    engine.run()
    conn = open_map_state(engine.config)
    with snapshot(conn) as taken:
        expected = list(taken.rows)
    assert len(expected) == 5

    jsonl = run_cli(data_dir)
    assert jsonl.returncode == 0, jsonl.stderr
    assert [orjson.loads(line) for line in jsonl.stdout.splitlines()] == expected

    target = tmp_path / "map.csv"
    written = run_cli(data_dir, "--format", "csv", "--output", str(target))
    assert written.returncode == 0, written.stderr
    assert f"wrote 5 rows to {target}" in written.stdout
    assert not target.with_name("map.csv.partial").exists()
    table = list(csv.reader(io.StringIO(target.read_text())))
    assert table[0] == ["anonymous_id", "from_ts", "to_ts", "person_id", "user_id", "identified"]
    cells = [cell for line in table[1:] for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]

    def value(cell: str) -> str | None:
        # The documented way back: drop one leading apostrophe; an empty cell is null.
        return (cell[1:] if cell.startswith("'") else cell) or None

    loaded: list[dict[str, Any]] = [
        {
            "anonymous_id": value(line[0]),
            "from_ts": int(line[1]) if line[1] else None,
            "to_ts": int(line[2]) if line[2] else None,
            "person_id": int(line[3]),
            "user_id": value(line[4]),
            "identified": line[5] == "true",
        }
        for line in table[1:]
    ]
    assert loaded == expected
    assert {hostile, "'quoted"} <= {row["anonymous_id"] for row in loaded}
    assert all(row["to_ts"] is None or row["to_ts"] < MAX_TS for row in loaded)


def test_the_cli_refuses_a_directory_without_bond_data(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "nothing-here")
    assert result.returncode == 1
    assert "no Bond data in" in result.stderr


def test_a_file_that_cannot_be_written_is_refused_with_the_reason(
    engine: Engine, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.track("laptop", 100)
    engine.run()
    target = tmp_path / "no-such-directory" / "map.jsonl"
    assert main(["--data-dir", str(data_dir), "identity-map", "--output", str(target)]) == 1
    assert f"cannot write the identity map to {target}" in capsys.readouterr().err
