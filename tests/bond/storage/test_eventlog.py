from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from bond.storage.eventlog import MIGRATIONS, NewEvent, RejectedEvent, SqliteEventLog
from bond.storage.sqlite import connect, migrate


def new(message_id: str, source: str = "web") -> NewEvent:
    return NewEvent(source, message_id, "track", "a", None, "E", 1, 2, None, None, b"{}")


def test_append_then_read_after_offsets(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    assert log.head() == 0
    assert log.append([new("m1"), new("m2"), new("m3")], []) == 3
    first = log.read_after(0, 2)
    assert [e.message_id for e in first] == ["m1", "m2"]
    rest = log.read_after(first[-1].seq, 10)
    assert [e.message_id for e in rest] == ["m3"]
    assert log.head() == rest[-1].seq


def test_missing_and_falsy_values_come_back_as_they_went_in(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    full = NewEvent("web", "m1", "page", "0", "u", "", 0, 0, "10.0.0.1", "UA", b'{"a":1}')
    empty = NewEvent("web", "m2", "identify", None, "u", None, 5, 6, None, None, b"{}")
    assert log.append([full, empty], []) == 2
    assert [tuple(e)[1:] for e in log.read_after(0, 10)] == [tuple(full), tuple(empty)]


def test_duplicates_are_stored_once_per_source(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    assert log.append([new("m1"), new("m1")], []) == 1
    assert log.append([new("m1")], []) == 0
    assert log.append([new("m1", source="app")], []) == 1


def test_a_refusal_tied_to_a_stored_event_is_written_only_when_that_event_is_new(
    tmp_path: Path,
) -> None:
    log = SqliteEventLog(tmp_path / "events.db")

    def refused(message_id: str) -> RejectedEvent:
        return RejectedEvent("web", 5, f"identity of {message_id} refused", b"{}", message_id)

    # Two copies in one commit, as when a beacon and the next page's request land together.
    assert log.append([new("m1"), new("m1")], [refused("m1"), refused("m1")]) == 1
    # Sent again with a new one beside it, and beside a refusal of an event never stored.
    untied = RejectedEvent("web", 5, "no id", b"{}")
    assert log.append([new("m1"), new("m2")], [refused("m1"), refused("m2"), untied]) == 1
    assert sorted(row.reason for row in log.rejected()) == [
        "identity of m1 refused",
        "identity of m2 refused",
        "no id",
    ]


def test_any_group_size_keeps_its_order_and_drops_its_duplicates(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    ids = [f"m{i}" for i in range(1300)]
    # Sizes below, at and past the largest prepared statement, and duplicates across its chunks.
    for start, end in ((0, 1), (1, 34), (34, 546), (546, 1300)):
        assert log.append([new(m) for m in ids[start:end]], []) == end - start
    assert log.append([new(m) for m in ["m5", "new-1", "m700", "new-2", "new-1"]], []) == 2
    again = [new(m) for m in ids[1200:] + [f"late-{i}" for i in range(600)] + ids[:3]]
    assert log.append(again, [RejectedEvent("web", 5, "no id", b"{}")]) == 600
    stored = log.read_after(0, 5000)
    expected = ids + ["new-1", "new-2"] + [f"late-{i}" for i in range(600)]
    assert [e.message_id for e in stored] == expected
    # Padding a group up to a prepared statement's size takes no offsets: no gaps without dups.
    assert [e.seq for e in stored[:1300]] == list(range(1, 1301))
    assert [e.seq for e in stored] == sorted({e.seq for e in stored})
    assert log.rejected_count() == 1


def test_a_log_written_before_the_dedup_key_keeps_refusing_its_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    old = connect(path)
    migrate(old, MIGRATIONS[:2], name="event log")
    old.executemany(
        "INSERT INTO events (source, message_id, type, timestamp, received_at, body) "
        "VALUES (?, ?, 'track', 1, 2, x'7b7d')",
        [("web", "m1"), ("web", "m2"), ("app", "m1")],
    )
    old.close()
    log = SqliteEventLog(path)
    assert log.append([new("m1"), new("m2", source="app"), new("m3")], []) == 2
    assert [(e.source, e.message_id) for e in log.read_after(3, 10)] == [
        ("app", "m2"),
        ("web", "m3"),
    ]
    with sqlite3.connect(path) as conn:
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert "events_message_id" not in indexes


def test_offsets_are_never_reused_after_a_delete(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    log.append([new("m1"), new("m2")], [])
    with sqlite3.connect(tmp_path / "events.db") as conn:
        conn.execute("DELETE FROM events WHERE message_id = 'm2'")
    log.append([new("m3")], [])
    assert [e.seq for e in log.read_after(0, 10)] == [1, 3]


def test_rejected_events_are_kept_with_reasons(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    log.append([], [RejectedEvent("web", 5, "no id", b'{"type":"page"}')])
    assert log.rejected_count() == 1
    assert log.rejected()[0].reason == "no id"


def test_wait_for_append_wakes_on_another_connections_commit(tmp_path: Path) -> None:
    reader = SqliteEventLog(tmp_path / "events.db")
    writer = SqliteEventLog(tmp_path / "events.db")
    assert reader.wait_for_append(0.05) is False
    appended = threading.Event()

    def append() -> None:
        appended.wait()
        writer.append([new("m1")], [])

    thread = threading.Thread(target=append)
    thread.start()
    appended.set()
    assert reader.wait_for_append(10) is True
    thread.join()


def test_a_commit_before_the_wait_is_not_missed(tmp_path: Path) -> None:
    reader = SqliteEventLog(tmp_path / "events.db")
    writer = SqliteEventLog(tmp_path / "events.db")
    version = reader.version()
    assert reader.read_after(0, 10) == []
    writer.append([new("m1")], [])
    # The commit landed between the read and the wait: the wait must end at once.
    assert reader.wait_for_append(0.0, since=version) is True
    assert [e.message_id for e in reader.read_after(0, 10)] == ["m1"]
