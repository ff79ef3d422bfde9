"""Writing a batch's rows with few SQLite statements: many rows of VALUES per statement.

Python's sqlite3 runs `executemany` as one statement execution per row, and each execution
has a fixed cost (a step, a reset, the statement's halt, the GIL released and taken back) that
was about as large as the row's own insert. A statement carrying `ROWS_PER_STATEMENT` rows pays
it once for all of them; the rows left over go one per execution.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from itertools import chain

ROWS_PER_STATEMENT = 64


@cache
def _statement(template: str, row: str, rows: int) -> str:
    return template.format(values=", ".join([row] * rows))


def execute_rows(
    conn: sqlite3.Connection, template: str, row: str, rows: Sequence[Sequence[object]]
) -> None:
    """Run `template` with `{values}` replaced by one `row` placeholder group per row.

    `row` is the placeholders of one row, such as "(?, ?)"; `template` uses them as VALUES,
    as in "INSERT INTO t (a, b) VALUES {values}".
    """
    size = ROWS_PER_STATEMENT
    whole = len(rows) - len(rows) % size
    if whole:
        conn.executemany(
            _statement(template, row, size),
            [list(chain.from_iterable(rows[at : at + size])) for at in range(0, whole, size)],
        )
    if whole < len(rows):
        conn.executemany(_statement(template, row, 1), rows[whole:])
