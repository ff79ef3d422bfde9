"""The log's tally: routine outcomes counted into one line a window, problems sampled."""

from __future__ import annotations

import asyncio

from bond.logs import Tally
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
