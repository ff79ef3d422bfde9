"""The command line refuses what it cannot use, with a reason, before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bond.cli import _parser, main
from conftest import ROOT, start_worker


@pytest.mark.parametrize("bench", ["ingest", "concurrency"])
@pytest.mark.parametrize("text", ["-5", "lots"])
def test_a_history_that_is_no_count_of_events_is_refused(
    bench: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", bench, "--history", text])
    assert exit_.value.code == 2
    assert "--history" in capsys.readouterr().err


def test_a_history_may_be_written_as_people_write_large_numbers() -> None:
    args = _parser().parse_args(["bench", "ingest", "--history", "1,000,000"])
    assert args.history == 1_000_000
    assert _parser().parse_args(["bench", "ingest"]).history is None


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "70000"],
        ["api", "--port", "0"],
        ["demo", "--shop-port", "eighty"],
    ],
)
def test_a_port_that_cannot_be_bound_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # 70000 would otherwise bind 4464 (70000 - 65536) while the log said 70000.
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "port" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["person", "ann@example.com"],
        ["erase", "ann@example.com"],
        ["export", "ann@example.com"],
        ["backup", "never-written"],
        ["identity-map"],
    ],
)
def test_a_data_directory_with_no_bond_data_is_refused_not_created(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A mistyped --data-dir answered 'no such person', and an erasure 'done'.
    typo = tmp_path / "bond-dat"
    assert main(["--data-dir", str(typo), *command]) == 1
    assert "no Bond data in" in capsys.readouterr().err
    assert not typo.exists()


@pytest.mark.parametrize(
    "argv", [["--households", "-3"], ["--difficulty", "7"], ["--sessions", "0"]]
)
def test_a_simulation_that_cannot_be_run_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Accepted before, they ran and printed None for every figure.
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", *argv])
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["person", "ann@example.com", "--limit", "0"],
        ["alerts", "list", "--limit", "-1"],
        ["erase", "ann@example.com", "--wait", "-5"],
        ["bench", "stitch", "--trials", "0"],
        ["bench", "ingest", "--seconds", "0"],
        ["bench", "ingest", "--connections", "0"],
        ["bench", "concurrency", "--seconds", "nan"],
        ["bench", "dashboard", "--repeat", "0"],
    ],
)
def test_a_count_or_duration_that_means_nothing_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Accepted before: `person --limit 0` showed one event, the benches started with nothing
    # to measure. Parsed only, so that a regression fails here instead of running a bench.
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(argv)
    assert exit_.value.code == 2
    assert argv[-2] in capsys.readouterr().err


def test_the_data_directory_may_also_follow_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `bond worker --data-dir DIR` answered "unrecognized arguments: --data-dir DIR".
    typo = tmp_path / "bond-dat"
    assert main(["--data-dir", "ignored", "person", "ann", "--data-dir", str(typo)]) == 1
    assert f"no Bond data in {typo}" in capsys.readouterr().err


LIST = ["alerts", "list", "--json"]


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    # `bond export ... | head` ended in a BrokenPipeError traceback.
    start_worker(tmp_path / "data").stop()
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first byte, as `head` is once it has its lines
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "bond.cli", "--data-dir", str(tmp_path / "data"), *LIST],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert listed.returncode == 1
    assert listed.stderr == ""
