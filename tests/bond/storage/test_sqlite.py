from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bond.errors import StorageError
from bond.storage.sqlite import connect, migrate, write_transaction
from conftest import captured_logs


def test_migrations_are_per_component_and_refuse_a_newer_schema(tmp_path: Path) -> None:
    conn = connect(tmp_path / "state.db")
    assert migrate(conn, ["CREATE TABLE a (x)"], name="one") == 1
    assert migrate(conn, ["CREATE TABLE b (x)", "CREATE TABLE c (x)"], name="two") == 2
    assert migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE a2 (x)"], name="one") == 2
    with pytest.raises(StorageError, match="newer than this Bond"):
        migrate(conn, ["CREATE TABLE a (x)"], name="one")


def test_a_failed_migration_leaves_the_old_schema(tmp_path: Path) -> None:
    conn = connect(tmp_path / "state.db")
    migrate(conn, ["CREATE TABLE a (x)"], name="one")
    with pytest.raises(StorageError):
        migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE b (x); NOT SQL"], name="one")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "b" not in tables
    assert conn.execute(
        "SELECT version FROM schema_version WHERE component = 'one'"
    ).fetchone() == (1,)


def test_a_process_opening_mid_migration_waits_for_it_and_does_not_apply_it_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    first, second = connect(path), connect(path)
    migrate(first, ["CREATE TABLE a (x)"], name="one")
    # Held past the busy timeout, as a long migration holds the lock.
    second.execute("PRAGMA busy_timeout = 0")
    holding, attempts = threading.Event(), threading.Semaphore(0)
    second.set_trace_callback(lambda sql: attempts.release() if sql == "BEGIN IMMEDIATE" else None)

    def hold_until_retried() -> int:
        holding.set()
        assert attempts.acquire(timeout=10) and attempts.acquire(timeout=10)
        return 0

    first.create_function("hold_until_retried", 0, hold_until_retried)
    second.create_function("hold_until_retried", 0, lambda: 0)
    migrations = ["CREATE TABLE a (x)", "CREATE TABLE b (x); SELECT hold_until_retried()"]
    migrating = threading.Thread(target=migrate, args=(first, migrations), kwargs={"name": "one"})
    migrating.start()
    try:
        assert holding.wait(timeout=10)
        assert migrate(second, migrations, name="one") == 2
    finally:
        migrating.join()
    assert second.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_an_upgrade_is_logged_with_its_duration_and_a_new_database_is_not(tmp_path: Path) -> None:
    conn = connect(tmp_path / "state.db")
    with captured_logs() as logged:
        migrate(conn, ["CREATE TABLE a (x)"], name="one")
        migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE b (x)"], name="one")
        migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE b (x)"], name="one")
    assert [
        (line["event"], line["database"], line["version"])
        for line in logged.records("migrating") + logged.records("migrated")
    ] == [("migrating", "one", 1), ("migrated", "one", 2)]
    assert logged.records("migrating")[0]["to"] == 2
    assert logged.records("migrated")[0]["seconds"] >= 0


def test_a_transaction_sqlite_rolled_back_itself_keeps_its_own_error(tmp_path: Path) -> None:
    # A full disk, as a database that may not grow shows it: SQLite ends the transaction itself.
    conn = connect(tmp_path / "events.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with (
        pytest.raises(sqlite3.OperationalError, match="database or disk is full"),
        write_transaction(conn),
    ):
        conn.execute("INSERT INTO t VALUES (randomblob(100000))")
    assert not conn.in_transaction
    conn.execute("PRAGMA max_page_count = 1073741823")
    with write_transaction(conn):
        conn.execute("INSERT INTO t VALUES (x'00')")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
