"""The WAL starts over under steady commits, checkpointed off the commit path then by the writer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bond.storage.eventlog import NewEvent, SqliteEventLog
from collector.checkpointer import Checkpointer
from collector.writer import Writer

PAGE = 4096
RESTART_FRAMES = 64


def commit_steadily(db: Path, finish: Callable[[Writer, SqliteEventLog], None]) -> tuple[int, int]:
    """Commit from 20 senders at once, so a group always waits.

    Returns the bytes committed and the largest the WAL file was seen.
    """
    body = b'{"pad":"' + b"x" * 2000 + b'"}'

    async def run() -> tuple[int, int]:
        event_log = SqliteEventLog(db, checkpoints=False)
        writer = Writer(event_log, queue_max_events=100_000)
        checkpointer = Checkpointer(
            db,
            finish=lambda: finish(writer, event_log),
            interval_s=0.005,
            restart_frames=RESTART_FRAMES,
            tail_frames=8,
        )
        writer.on_commit.append(checkpointer.committed)
        writer.start()
        checkpointer.start()

        wal, largest = db.with_name(db.name + "-wal"), 0

        async def send(sender: int) -> None:
            nonlocal largest
            for n in range(40):
                events = [
                    NewEvent(
                        "web", f"{sender}-{n}-{i}", "track", "a", None, "E", 1, 2, None, None, body
                    )
                    for i in range(10)
                ]
                await writer.submit(events, [])
                largest = max(largest, wal.stat().st_size)

        await asyncio.gather(*(send(s) for s in range(20)))
        await writer.stop()
        checkpointer.stop()
        event_log.close()
        return 20 * 40 * 10 * len(body), largest

    # On a thread of its own: once an e2e test has run, Playwright's sync API keeps an event loop
    # running in the main thread, where asyncio.run refuses to start.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result()


def test_the_wal_starts_over_while_commits_keep_coming(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    asked: list[bool] = []

    def finish(writer: Writer, event_log: SqliteEventLog) -> None:
        asked.append(True)
        writer.between_commits(event_log.checkpoint_passive)

    committed, wal = commit_steadily(db, finish)
    assert asked, "the checkpointer asked the writer to finish"
    # Without a restart the WAL holds more than everything committed (16 MB here, in 34 MB).
    assert wal < committed / 2
    assert len(SqliteEventLog(db).read_after(0, 10_000)) == 8000
