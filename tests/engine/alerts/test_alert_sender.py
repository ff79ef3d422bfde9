"""The sender against a fake Discord: every answer Discord can give, and its rate limit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_support import fake_discord, outbox_db

from bond.storage.sqlite import connect
from conftest import LogCapture, captured_logs, free_port, wait_until
from engine.alerts import outbox
from engine.alerts.fake_discord import Bucket, FakeDiscord
from engine.alerts.message import Message
from engine.alerts.sender import Sender, in_background


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with fake_discord() as fake:
        yield fake


@pytest.fixture
def state(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with outbox_db(tmp_path / "state.db") as conn:
        yield conn


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    with captured_logs() as capture:
        yield capture


def add(conn: sqlite3.Connection, n: int = 1, person: int = 7) -> list[int]:
    return [
        outbox.enqueue(
            conn,
            rule="big spender",
            kind="identified",
            person_id=person,
            summary=f"alert {i}",
            payload=Message("identified", f"alert {i}").payload(),
        )
        for i in range(n)
    ]


def states(conn: sqlite3.Connection) -> dict[int, str]:
    return {a.id: a.state for a in outbox.recent(conn, 1000)}


def test_a_delivered_alert_is_marked_sent_with_discords_message_id(
    state: sqlite3.Connection, discord: FakeDiscord
) -> None:
    [alert_id] = add(state)
    assert Sender(state, discord.url).send_due() == 1
    [alert] = outbox.recent(state)
    assert (alert.id, alert.state, alert.discord_message_id) == (alert_id, "sent", "1")
    [request] = discord.delivered
    assert request.body["allowed_mentions"] == {"parse": []}
    assert request.body["embeds"][0]["title"] == "alert 0"


def test_429_without_via_is_waited_out_and_retried_not_raised(
    state: sqlite3.Connection, discord: FakeDiscord, logs: LogCapture
) -> None:
    add(state)
    discord.then("429")
    sender = Sender(state, discord.url)
    sender.send_due()
    assert list(states(state).values()) == ["sent"]
    assert [r.status for r in discord.requests] == [429, 200]
    assert sender.rate_limited == 1
    [line] = logs.records("alert_rate_limited")
    assert line["reason"] == "rate limited (without Via)"


def test_429_with_via_is_waited_out_too(state: sqlite3.Connection, discord: FakeDiscord) -> None:
    add(state)
    discord.then("429-via", "429-via")
    Sender(state, discord.url).send_due()
    assert [r.status for r in discord.requests] == [429, 429, 200]
    assert list(states(state).values()) == ["sent"]


def test_5xx_backs_off_and_retries_until_delivered(
    state: sqlite3.Connection, discord: FakeDiscord, logs: LogCapture
) -> None:
    add(state)
    discord.then("500", "500")
    sender = Sender(state, discord.url, backoff_base_s=0.01)
    wait_until(lambda: sender.send_due() == 0 and states(state) == {1: "sent"}, what="delivery")
    assert [r.status for r in discord.requests] == [500, 500, 200]
    [alert] = outbox.recent(state)
    assert alert.attempts == 3
    assert [line["retry_in_s"] for line in logs.records("alert_retry")] == [0.01, 0.02]


def test_a_failing_alert_does_not_hold_up_the_others(
    state: sqlite3.Connection, discord: FakeDiscord
) -> None:
    first, second = add(state, 2)
    discord.then("500")
    # A long backoff: the first alert is not due again during this test.
    sender = Sender(state, discord.url, backoff_base_s=3600)
    sender.send_due()
    assert states(state) == {first: "pending", second: "sent"}
    [alert] = [a for a in outbox.recent(state) if a.id == first]
    assert alert.last_error == "Discord answered 500: Internal Server Error"


def test_a_deleted_webhook_fails_the_alert_with_a_clear_line_and_others_still_go(
    state: sqlite3.Connection, discord: FakeDiscord, logs: LogCapture
) -> None:
    first, second, third = add(state, 3)
    discord.then("404", "401")
    Sender(state, discord.url).send_due()
    assert states(state) == {first: "failed", second: "failed", third: "sent"}
    lines = logs.records("alert_webhook_rejected")
    assert [line["status"] for line in lines] == [404, 401]
    assert "the webhook was deleted or its URL is wrong" in str(lines[0]["reason"])
    assert "s3cret-token" not in logs.text
    failed = outbox.recent(state)[-1]
    assert failed.last_error is not None and "Unknown Webhook" in failed.last_error


def test_a_hanging_discord_times_out_and_the_alert_is_retried(
    state: sqlite3.Connection, discord: FakeDiscord
) -> None:
    add(state)
    discord.then("hang")
    sender = Sender(state, discord.url, timeout_s=0.2, backoff_base_s=0.01)
    wait_until(lambda: sender.send_due() == 0 and states(state) == {1: "sent"}, what="delivery")
    [alert] = outbox.recent(state)
    assert alert.attempts == 2
    assert [r.status for r in discord.requests] == [0, 200]


def test_network_errors_are_retried_and_never_log_the_webhook_url(
    state: sqlite3.Connection, logs: LogCapture
) -> None:
    add(state)
    url = f"http://127.0.0.1:{free_port()}/api/webhooks/1/s3cret-token"
    Sender(state, url, backoff_base_s=3600).send_due()
    [alert] = outbox.recent(state)
    assert (alert.state, alert.attempts) == ("pending", 1)
    assert alert.last_error == "no answer from Discord (ConnectionError)"
    assert logs.records("alert_retry")
    assert "s3cret-token" not in logs.text
    assert "s3cret-token" not in str(alert)


def test_a_burst_of_200_alerts_stays_within_the_rate_limit(
    tmp_path: Path, state: sqlite3.Connection
) -> None:
    with fake_discord(Bucket(limit=10, window_s=0.2)) as discord:
        with in_background(Sender(connect(tmp_path / "state.db"), discord.url)):
            writer = connect(tmp_path / "state.db")
            writer.execute("BEGIN")
            add(writer, 200)
            writer.execute("COMMIT")
            wait_until(lambda: len(discord.delivered) == 200, timeout=60, what="200 deliveries")
        titles = [r.body["embeds"][0]["title"] for r in discord.delivered]
        assert sorted(titles) == sorted(f"alert {i}" for i in range(200))
        assert discord.over_limit == 0
        assert len(discord.requests) == 200
        assert set(states(state).values()) == {"sent"}


def test_a_running_sender_picks_up_alerts_committed_by_another_connection(
    tmp_path: Path, state: sqlite3.Connection, discord: FakeDiscord
) -> None:
    with in_background(Sender(connect(tmp_path / "state.db"), discord.url)):
        add(state, 1)
        wait_until(lambda: discord.delivered, what="delivery")
        add(state, 1)
        wait_until(lambda: len(discord.delivered) == 2, what="second delivery")
    assert set(states(state).values()) == {"sent"}
