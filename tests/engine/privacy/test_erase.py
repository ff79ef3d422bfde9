"""Erasure through the real collector, worker and read API: nothing of Ann is left in any
table or any byte of the database files, Bob (who shared her laptop) keeps everything, her
late events are dropped, a second erasure finds nothing, and a crash at any step resumes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from conftest import wait_until
from engine.privacy.erase import FAULT_ENV
from tests.engine.privacy.privacy_support import (
    ANN_EMAIL,
    ANN_NAME,
    ANN_NEEDLES,
    ANN_PHONE,
    ANN_USER,
    BOB_EMAIL,
    BOB_NAME,
    SHARED_LAPTOP,
    Stack,
    event,
    found_in_bytes,
    found_in_tables,
    post,
    stack,
    two_people,
)


def load_two_people(running: Stack) -> tuple[int, int]:
    response = post(running.collector, two_people())
    assert response.status_code == 200, response.text
    running.caught_up()
    ann = running.person(email=ANN_EMAIL)
    bob = running.person(email=BOB_EMAIL)
    assert ann is not None and bob is not None
    return ann["id"], bob["id"]


def test_erasure_leaves_no_trace_of_ann_and_all_of_bob(data_dir: Path) -> None:
    with stack(data_dir) as running:
        ann_id, bob_id = load_two_people(running)
        bob_before = running.timeline(bob_id)
        assert running.person(email=ANN_EMAIL)["traits"]["name"]  # type: ignore[index]
        # Before: Ann is in the raw log as sent; state.db holds her email, name and event
        # properties (alerts about her included) only sealed with her key.
        assert found_in_tables(data_dir, ANN_NEEDLES)
        assert counts_of(running)["alert_outbox"] == 2  # one alert each
        assert found_in_bytes(data_dir, (ANN_EMAIL, ANN_NAME), ("state.db",)) == []

        erasure = running.erase(email=ANN_EMAIL.upper())

        counts = erasure["result"]["counts"]
        assert erasure["step"] == "checkpointed"
        assert erasure["result"]["found"] is True
        assert counts["persons"] == 2  # Ann and the anonymous phone folded into her
        assert counts["keys"] == 2
        assert counts["log_events"] == 7
        assert counts["rejected_events"] == 1
        assert counts["timeline_events"] == 7
        assert counts["segments_handed_to_anonymous"] == 1  # her part of the shared laptop
        assert counts["alerts"] >= 1
        assert found_in_tables(data_dir, ANN_NEEDLES) == []
        assert found_in_bytes(data_dir, ANN_NEEDLES) == []
        assert running.person(email=ANN_EMAIL) is None
        assert running.person(user_id=ANN_USER) is None
        assert running.api.get(f"/persons/{ann_id}").status_code == 404

        # Bob, who logged in on the same laptop later, keeps his whole, readable history.
        bob = running.person(email=BOB_EMAIL)
        assert bob is not None and bob["id"] == bob_id
        assert bob["traits"]["name"] == BOB_NAME
        assert running.timeline(bob_id) == bob_before
        assert SHARED_LAPTOP in bob["anonymous_ids"]
        assert found_in_tables(data_dir, (BOB_EMAIL, SHARED_LAPTOP))

        audit = running.api.get(f"/erasures/{erasure['id']}").json()
        assert "ann" not in str(audit).lower()


def test_late_events_of_an_erased_person_are_dropped_at_ingest(data_dir: Path) -> None:
    with stack(data_dir) as running:
        load_two_people(running)
        running.erase(user_id=ANN_USER)
        head = running.head()
        # Her phone's retry queue, her old tab, and a server call with her user id.
        late = [
            event(100, "track", 90, anonymousId=ANN_PHONE, event="Cart Viewed"),
            event(101, "track", 91, anonymousId="fresh-tab", userId=ANN_USER, event="Viewed"),
            event(102, "identify", 92, anonymousId="other-device", traits={"email": ANN_EMAIL}),
            event(103, "track", 93, anonymousId="bob-phone-77aa", event="Kept"),
        ]

        # The collector re-reads the list within a second; until then the worker drops them.
        def dropped_by_the_collector() -> bool:
            response = post(running.collector, late[:3])
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 3
            return suppressed_at_ingest(running) >= 3

        wait_until(dropped_by_the_collector, timeout=5, interval=0.3, what="the collector")
        assert post(running.collector, late[3:]).status_code == 200
        running.caught_up()
        assert running.head() > head  # Bob's phone's event went in
        assert logged_ids(running) & {ANN_PHONE, "fresh-tab", "other-device"} == set()
        assert running.person(email=ANN_EMAIL) is None
        assert running.person(user_id=ANN_USER) is None
        assert running.person(anonymous_id=ANN_PHONE) is None
        assert found_in_tables(data_dir, ANN_NEEDLES) == []


def counts_of(running: Stack) -> dict[str, int]:
    with sqlite3.connect(running.data_dir / "state.db") as conn:
        return {"alert_outbox": conn.execute("SELECT count(*) FROM alert_outbox").fetchone()[0]}


def suppressed_at_ingest(running: Stack) -> int:
    metrics = httpx.get(f"{running.collector.url}/metrics", timeout=5).text
    line = next(x for x in metrics.splitlines() if x.startswith("bond_events_suppressed_total"))
    return int(float(line.split()[-1]))


def logged_ids(running: Stack) -> set[str]:
    with sqlite3.connect(running.data_dir / "events.db") as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT anonymous_id FROM events")}


def test_erasing_twice_finds_nothing_the_second_time(data_dir: Path) -> None:
    with stack(data_dir) as running:
        load_two_people(running)
        first = running.erase(email=ANN_EMAIL)
        second = running.erase(email=ANN_EMAIL)
        assert first["result"]["found"] is True
        assert second["result"]["found"] is False
        assert second["result"]["persons"] == 0
        assert second["result"]["counts"] == {}  # already suppressed, nothing left to delete
        assert running.person(email=BOB_EMAIL) is not None


@pytest.mark.parametrize("step", ["planned", "suppressed", "log_erased", "state_erased"])
def test_a_worker_killed_mid_erasure_finishes_it_after_restart(data_dir: Path, step: str) -> None:
    with stack(data_dir, worker_env={FAULT_ENV: step}) as running:
        _ann, bob_id = load_two_people(running)
        response = httpx.post(
            f"{running.api.url}/erasures",
            json={"email": ANN_EMAIL},
            headers=running.api.headers,
            timeout=10,
        )
        assert response.status_code == 202
        erasure_id = response.json()["id"]
        proc = running.worker.proc
        assert proc is not None
        assert proc.wait(timeout=30) == 70  # the fault point exited the worker hard
        stopped = running.api.get(f"/erasures/{erasure_id}").json()
        assert stopped["state"] == "running" and stopped["step"] == step

        running.restart_worker()

        def finished() -> bool:
            return running.api.get(f"/erasures/{erasure_id}").json()["state"] == "done"

        wait_until(finished, timeout=30, what="the erasure to resume and finish")
        assert found_in_tables(data_dir, ANN_NEEDLES) == []
        assert found_in_bytes(data_dir, ANN_NEEDLES) == []
        assert running.person(email=BOB_EMAIL)["id"] == bob_id  # type: ignore[index]
