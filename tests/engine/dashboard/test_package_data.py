"""An installed Bond serves the dashboard: every static file is declared as package data."""

from __future__ import annotations

import tomllib

from conftest import ROOT
from engine.dashboard.app import STATIC


def test_every_static_file_is_package_data() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["engine.dashboard"]
    package = STATIC.parent
    declared = {path for pattern in patterns for path in package.glob(pattern)}
    shipped = {path for path in STATIC.rglob("*") if path.is_file()}
    assert shipped - declared == set()
    assert shipped
