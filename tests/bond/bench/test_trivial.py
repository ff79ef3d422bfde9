"""The bench's baseline endpoint runs as a Bond server does: JSON log lines, a clean stop."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bond.bench.processes import free_port, running


def test_it_answers_logs_json_and_stops_with_status_zero(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "trivial.log"
    with running(
        ["bond.bench.trivial", "--port", str(port)], ready_url=f"http://127.0.0.1:{port}/", log=log
    ) as proc:
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/track", content=b'{"event": "x"}')
        assert answer.status_code == 204
    assert proc.returncode == 0
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[:1] == ["listening"]
