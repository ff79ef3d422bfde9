"""The ceiling for one Python worker: a Starlette endpoint that parses JSON and answers 204.

`bond bench ingest` runs it under the same uvicorn settings as the collector, so the ratio
between the two is the cost of validation and a durable commit, not of the HTTP stack.
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ingest(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(status_code=204)


app = Starlette(routes=[Route("/v1/{kind}", ingest, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
