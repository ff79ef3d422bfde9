"""Running Bond's apps under uvicorn with the settings we rely on."""

from __future__ import annotations

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
    log("listening", app="collector", url=f"http://{collector.host}:{collector.port}")
    uvicorn.run(
        app,
        host=collector.host,
        port=collector.port,
        # Our own JSON lines summarise each request; uvicorn's access log would repeat them.
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
