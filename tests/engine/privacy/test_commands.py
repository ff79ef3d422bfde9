"""`bond erase`, `bond unsuppress` and `bond export` as an operator runs them, and the worker
lock that decides whether `bond erase` does the work itself."""

from __future__ import annotations

from pathlib import Path

import orjson

from conftest import wait_until
from tests.engine.privacy.privacy_support import (
    ANN_EMAIL,
    ANN_NEEDLES,
    ANN_USER,
    BOB_EMAIL,
    event,
    found_in_bytes,
    post,
    run_cli,
    stack,
    two_people,
)


def test_erase_without_a_worker_runs_in_process_and_unsuppress_undoes_the_list(
    data_dir: Path,
) -> None:
    with stack(data_dir) as running:
        assert post(running.collector, two_people()).status_code == 200
        running.caught_up()
        running.worker.stop()

        erased = run_cli(data_dir, "erase", ANN_EMAIL, env=running.env)

        assert erased.returncode == 0, erased.stderr
        result = orjson.loads(erased.stdout)
        assert result["state"] == "done" and result["result"]["persons"] == 2
        assert result["requested_by"].startswith("cli:")
        assert found_in_bytes(data_dir, ANN_NEEDLES) == []
        assert running.person(email=BOB_EMAIL) is not None

        back = event(200, "identify", 200, anonymousId="new-laptop", traits={"email": ANN_EMAIL})
        head = running.head()
        assert post(running.collector, [back]).status_code == 200
        assert running.head() == head  # suppressed
        undone = run_cli(data_dir, "unsuppress", ANN_EMAIL, env=running.env)
        assert undone.returncode == 0, undone.stderr
        # The CLI took the argument as an email and as a user id: both forms come back.
        assert "unsuppressed 2 identifier(s)" in undone.stdout
        again = run_cli(data_dir, "unsuppress", ANN_EMAIL, env=running.env)
        assert again.returncode == 1 and "was not suppressed" in again.stdout

        def accepted_again() -> bool:
            post(running.collector, [back])
            return running.head() > head

        wait_until(accepted_again, timeout=5, interval=0.3, what="the email to be accepted")


def test_erase_with_a_worker_running_leaves_the_work_to_it(data_dir: Path) -> None:
    with stack(data_dir) as running:
        assert post(running.collector, two_people()).status_code == 200
        running.caught_up()

        erased = run_cli(data_dir, "erase", ANN_USER, env=running.env)

        assert erased.returncode == 0, erased.stderr
        assert "the running worker carries it out" in erased.stdout
        assert '"state": "done"' in erased.stdout
        assert running.person(email=ANN_EMAIL) is None


def test_erase_refuses_a_placeholder_and_a_second_worker_refuses_to_start(
    data_dir: Path,
) -> None:
    with stack(data_dir) as running:
        refused = run_cli(data_dir, "erase", "undefined", env=running.env)
        assert refused.returncode == 1
        assert "not an email or user id" in refused.stderr

        second = start_worker_expecting_exit(data_dir, running.env)
        assert "another bond worker is running" in second


def start_worker_expecting_exit(data_dir: Path, env: dict[str, str]) -> str:
    result = run_cli(data_dir, "worker", env=env)
    assert result.returncode == 1
    return result.stderr


def test_export_prints_everything_held_as_json(data_dir: Path) -> None:
    with stack(data_dir) as running:
        assert post(running.collector, two_people()).status_code == 200
        running.caught_up()

        exported = run_cli(data_dir, "export", ANN_EMAIL, env=running.env)

        assert exported.returncode == 0, exported.stderr
        document = orjson.loads(exported.stdout)
        assert document["person"]["user_ids"] == [ANN_USER]
        assert len(document["merged_person_ids"]) == 1  # her phone, before she identified on it
        assert len(document["timeline"]) == document["person"]["event_count"] == 7
        assert len(document["raw_events"]) == 7
        missing = run_cli(data_dir, "export", "nobody@example.com", env=running.env)
        assert missing.returncode == 1 and "no person" in missing.stderr
