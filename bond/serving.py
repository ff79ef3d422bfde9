"""Running Bond's apps under uvicorn with the settings we rely on."""

from __future__ import annotations

import gc
from dataclasses import replace

import uvicorn

from bond.config import Config
from bond.logs import log


def serve_collector(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    from collector.app import create_app

    collector = replace(
        config.collector,
        host=host or config.collector.host,
        port=port if port is not None else config.collector.port,
    )
    config = replace(config, collector=collector)
    app = create_app(config)
    tune_for_ingest()
    log("listening", app="collector", url=f"http://{collector.host}:{collector.port}")
    uvicorn.run(
        app,
        host=collector.host,
        port=collector.port,
        # Named rather than "auto", which falls back to the pure-Python ones without a word.
        http="httptools",
        loop="uvloop",
        # Our own JSON lines summarise each request; uvicorn's access log would repeat them.
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def tune_for_ingest() -> None:
    """Interpreter settings for a process whose event loop never rests under load.

    Ingest allocates thousands of small containers per batch and makes few reference cycles, so
    the cyclic collector's passes are pure cost: the objects made at start-up (imports, config)
    are frozen out of its reach, and its first generation collects less often.
    """
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
