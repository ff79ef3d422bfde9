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


def test_bond_person_says_when_the_worker_has_not_applied_the_log(engine: Engine) -> None:
    engine.identify("laptop", 1_780_000_060_000, user="u-42", email="ada@example.com")
    result = bond_person(engine, "ada@example.com")
    assert result.returncode == 1
    assert "has not applied the newest 1 event(s)" in result.stderr
    assert "is bond worker running" in result.stderr

    engine.run()
    assert bond_person(engine, "ada@example.com").returncode == 0


def test_bond_person_shows_browser_control_characters_as_literal_text(engine: Engine) -> None:
    browser = "lap\x9b2Jtop"  # C1 CSI: some terminals obey it even inside UTF-8
    engine.track(browser, 1_780_000_000_000, event="Evil\x1b[2J\x1b[31mNAME\rOVER")
    title = "\x1b]0;pwned\x07"  # retitles the terminal window
    engine.send("page", anon=browser, ts=1_780_000_010_000, event=title, name=title)
    engine.track(browser, 1_780_000_020_000, event="Café ☕ 注文")
    engine.send(
        "identify",
        anon=browser,
        user="u-42\x7f\x08",
        ts=1_780_000_060_000,
        traits={"email": "ada@example.com", "plan": "pro\x9b31m"},
    )
    engine.run()

    result = bond_person(engine, "ada@example.com")

    assert result.returncode == 0, result.stderr
    shown = result.stdout.replace("\n", "")
    assert not [c for c in shown if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0], shown
    for literal in (
        "Evil\\x1b[2J\\x1b[31mNAME\\x0dOVER",
        "\\x1b]0;pwned\\x07",
        "user ids: u-42\\x7f\\x08",
        "browsers: lap\\x9b2Jtop",
        '"plan":"pro\\x9b31m"',
        "Café ☕ 注文",
    ):
        assert literal in result.stdout, result.stdout
