"""`bond serve` as an operator meets it when it cannot listen: one JSON line and a failed exit."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import BondProcess, free_port, wait_until
from tests.bond.network_support import ipv6_loopback


@pytest.mark.parametrize(
    ("command", "app"), [(["serve"], "collector"), (["api"], "read_api")], ids=["serve", "api"]
)
def test_a_port_already_in_use_is_one_json_line_and_a_failed_exit(
    tmp_path: Path, command: list[str], app: str
) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        process = BondProcess([*command, "--port", str(port)], tmp_path / "data").start()
        assert process.proc is not None
        code = process.proc.wait(timeout=60)
    # Before, it logged `listening`, then uvicorn's own plain-text error, and exited 3.
    assert code == 1
    lines = [orjson.loads(line) for line in process.log.splitlines()]
    assert [(line["event"], line["app"]) for line in lines] == [("listen_failed", app)], process.log
    assert f"port {port} is already in use" in lines[0]["reason"]
    assert not (tmp_path / "data" / "events.db").exists()


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_address_is_logged_as_a_url(tmp_path: Path) -> None:
    # It was logged as http://::1:PORT, which no client can open.
    port = free_port()
    serve = BondProcess(["serve", "--host", "::1", "--port", str(port)], tmp_path / "data")
    serve.start()
    try:
        wait_until(lambda: "collector_started" in serve.log, timeout=20, what="the collector")
        assert httpx.get(f"http://[::1]:{port}/healthz", timeout=5).status_code == 200
    finally:
        serve.stop()
    listening = [orjson.loads(line) for line in serve.log.splitlines() if "listening" in line]
    assert listening[0]["url"] == f"http://[::1]:{port}"
