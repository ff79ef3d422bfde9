"""The log's tally: routine outcomes counted into one line a window, problems sampled."""

from __future__ import annotations

import asyncio
import io

from bond import logs
from bond.logs import Tally, log
from conftest import captured_logs


def test_a_problem_repeated_gets_a_few_lines_and_the_rest_are_counted() -> None:
    async def burst() -> list[bool]:
        tally = Tally("summary", interval_s=3600)  # flushed by hand: the window never ends
        own = [tally.own_line(("batch", 400, "missing_id"), 3) for _ in range(8)]
        own.append(tally.own_line(("single", 401, "unauthorized"), 3))
        tally.flush()
        own.append(tally.own_line(("batch", 400, "missing_id"), 3))  # a new window
        tally.flush()
        return own

    with captured_logs() as logs:
        own = asyncio.run(burst())
    assert own == [True] * 3 + [False] * 5 + [True, True]
    [line] = logs.records("summary")
    assert line["counts"] == {"batch 400 missing_id": 5}


def test_a_line_a_full_disk_refuses_is_dropped_and_the_caller_goes_on() -> None:
    # /dev/full refuses every write with ENOSPC. Unbuffered, so that closing it has nothing
    # left to write.
    with (
        open("/dev/full", "wb", buffering=0) as device,
        io.TextIOWrapper(device, write_through=True) as full,
    ):
        previous = logs.redirect(full)
        try:
            log("event_log_write_failed", reason="database or disk is full")
        finally:
            logs.redirect(previous)
