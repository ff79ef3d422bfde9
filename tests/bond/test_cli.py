"""The command line refuses what it cannot use, with a reason, before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bond.cli import _parser, main


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
    [["person", "ann@example.com"], ["erase", "ann@example.com"], ["export", "ann@example.com"]],
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
