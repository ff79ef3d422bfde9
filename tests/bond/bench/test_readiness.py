"""Waiting for a server started as a process: ready once it answers itself, and not with a 5xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bond.bench.processes import free_port, running
from bond.demo import ShopServer
from conftest import ROOT


def test_another_programs_answer_on_the_port_is_not_ready(tmp_path: Path) -> None:
    other = ShopServer(collector_url="http://127.0.0.1:9", write_key="k").start()
    port = other.url.rpartition(":")[2]
    try:
        # Before, the other server's 404 passed for the collector's readiness.
        serve = ["bond.cli", "--data-dir", str(tmp_path / "data"), "serve", "--port", port]
        with (
            pytest.raises(RuntimeError, match="exited with 1 before it was ready"),
            running(serve, ready_url=f"http://127.0.0.1:{port}/healthz"),
        ):
            pass
    finally:
        other.stop()


def test_a_server_answering_503_is_not_ready_yet() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    starting = ["tests.bond.bench.unready_server", "--port", str(port)]
    with running(starting, ready_url=url, env={"PYTHONPATH": str(ROOT)}):
        # Before, the first 503 passed for ready.
        assert httpx.get(url, timeout=5).status_code == 200
