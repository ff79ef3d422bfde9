"""Many rows per statement: every row lands once, whole statements and the rows left over."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.rows import ROWS_PER_STATEMENT, execute_rows


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
    yield conn
    conn.close()


@pytest.mark.parametrize(
    "count", [0, 1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 3 * ROWS_PER_STATEMENT + 5]
)
def test_every_row_is_inserted_once(conn: sqlite3.Connection, count: int) -> None:
    rows = [(n, f"name-{n}", bytearray(n.to_bytes(2, "big"))) for n in range(count)]
    execute_rows(conn, "INSERT INTO t (id, name, data) VALUES {values}", "(?, ?, ?)", rows)

    stored = conn.execute("SELECT id, name, data FROM t ORDER BY id").fetchall()
    assert stored == [(n, name, bytes(data)) for n, name, data in rows]


def test_an_update_joins_each_row_by_key(conn: sqlite3.Connection) -> None:
    count = ROWS_PER_STATEMENT + 3
    conn.executemany("INSERT INTO t (id, name) VALUES (?, 'old')", [(n,) for n in range(count)])

    execute_rows(
        conn,
        "WITH v (name, id) AS (VALUES {values}) "
        "UPDATE t SET name = v.name FROM v WHERE t.id = v.id",
        "(?, ?)",
        [(f"new-{n}", n) for n in range(0, count, 2)],
    )

    names = dict(conn.execute("SELECT id, name FROM t").fetchall())
    assert names == {n: f"new-{n}" if n % 2 == 0 else "old" for n in range(count)}


def test_a_bad_row_fails_its_whole_statement(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (id, name) VALUES (7, 'taken')")
    rows = [(n, "x", None) for n in range(ROWS_PER_STATEMENT)]

    conn.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError):
        execute_rows(conn, "INSERT INTO t (id, name, data) VALUES {values}", "(?, ?, ?)", rows)
    conn.execute("ROLLBACK")

    assert conn.execute("SELECT id, name FROM t").fetchall() == [(7, "taken")]
