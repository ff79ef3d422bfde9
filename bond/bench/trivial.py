"""The ceiling for one Python worker: a Starlette endpoint that parses JSON and answers 204.

`bond bench ingest` runs it under the same uvicorn settings as the collector, so the ratio
between the two is the cost of validation and a durable commit, not of the HTTP stack.
"""

from __future__ import annotations

import argparse

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bond.serving import serve


async def ingest(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(status_code=204)


app = Starlette(routes=[Route("/v1/{kind}", ingest, methods=["POST"])])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # bond serve's runner: its JSON log lines and its clean exit when the bench stops it.
    return serve("trivial", lambda: app, "127.0.0.1", args.port, http="httptools", loop="uvloop")


if __name__ == "__main__":
    raise SystemExit(main())
