"""`bond person` as an operator runs it, on a state built by the real worker."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from tests.engine.harness import Engine


def bond_person(engine: Engine, who: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bond.cli",
            "--data-dir",
            str(engine.config.data_dir),
            "person",
            who,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_bond_person_prints_the_stitched_timeline(engine: Engine) -> None:
    engine.track("laptop", 1_780_000_000_000, event="Product Viewed")
    engine.identify("laptop", 1_780_000_060_000, user="u-42", email="Ada@Example.com")
    engine.run()

    for who in ("ada@example.com", "u-42", "laptop"):
        result = bond_person(engine, who)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "person 1 · identified · 1 browser(s) · 2 event(s)"
        assert "  user ids: u-42" in lines and "  emails: ada@example.com" in lines
        identify, viewed = [line for line in lines if line.startswith("2026-")]
        assert identify.startswith("2026-05-28 20:27:40.000  identify")
        assert "Product Viewed" in viewed and "laptop" in viewed


def test_bond_person_says_when_nobody_matches(engine: Engine) -> None:
    result = bond_person(engine, "nobody@example.com")
    assert result.returncode == 1
    assert "no person known" in result.stderr
