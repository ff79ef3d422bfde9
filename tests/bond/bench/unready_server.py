"""A server that answers 503 to its first requests, then 200: a process still starting up, for
the readiness check of bond/bench/processes.py. Run as `python -m tests.bond.bench.unready_server
--port N`."""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

UNREADY_ANSWERS = 3


class _Handler(BaseHTTPRequestHandler):
    answered = 0

    def do_GET(self) -> None:
        _Handler.answered += 1
        self.send_response(503 if _Handler.answered <= UNREADY_ANSWERS else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    # One thread: the answers are counted in the order they were asked for.
    HTTPServer(("127.0.0.1", parser.parse_args().port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
