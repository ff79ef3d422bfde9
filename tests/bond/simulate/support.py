"""`bond simulate` run as a real process, as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from conftest import ROOT


def simulate_json(*args: str) -> dict[str, Any]:
    """The JSON report of `bond simulate ARGS --json`, which must exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "bond.cli", "simulate", *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report
