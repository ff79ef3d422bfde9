"""Running Bond's apps under uvicorn with the settings we rely on."""

from __future__ import annotations

import errno
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import uvicorn

from bond.config import Config
from bond.logs import log
from bond.storage.dirlock import COLLECTOR, holding

# What uvicorn.run exits with when the app's lifespan refused to start.
STARTUP_FAILURE = 3
# A second SIGINT skips the drain (uvicorn's "force quit"): not a clean stop.
FORCED_EXIT = 130

_stopping = threading.Event()


def serve_collector(config: Config, *, host: str | None = None, port: int | None = None) -> int:
    """Run the collector until it is stopped; the exit status for the command line."""
    from collector.app import create_app

    collector = replace(
        config.collector,
        host=host or config.collector.host,
        port=port if port is not None else config.collector.port,
    )
    config = replace(config, collector=collector)

    def app() -> Callable[..., Any]:
        made = create_app(config)
        tune_for_ingest()
        return made

    # Taken before the port and the event log: a second collector refused here touched neither.
    with holding(config.data_dir, COLLECTOR):
        return serve(
            "collector",
            app,
            collector.host,
            collector.port,
            change="--port, or port in bond.toml's [collector]",
            # Named rather than "auto", which falls back to the pure-Python ones without a word.
            http="httptools",
            loop="uvloop",
            timeout_graceful_shutdown=10,
        )


def serve(
    name: str,
    make_app: Callable[[], Callable[..., Any]],
    host: str,
    port: int,
    *,
    change: str = "--port",
    path: str = "",
    **options: Any,
) -> int:
    """Run the app `make_app` makes on `host:port` until it is stopped; the exit status.

    The socket is bound before the app is made, so that a taken port is one clear line
    (`listen_failed`, saying where `change` chooses another) and a failed exit, not `listening`
    followed by uvicorn's own plain-text error. `options` go to uvicorn.Config.

    SIGTERM or SIGINT stops it gracefully, with status 0 once the requests in flight and the
    app's shutdown (the collector's last commits) are done.
    """
    url = http_url(host, port) + path
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        log("listen_failed", app=name, url=url, reason=bind_failure(exc, port, change))
        return 1
    with sock:
        app = make_app()
        log("listening", app=name, url=url)
        settings = {
            # Our own JSON lines summarise each request; uvicorn's access log would repeat them.
            "access_log": False,
            "log_level": "warning",
            "log_config": _UVICORN_LOGS,
            **options,
        }
        server = _Server(uvicorn.Config(app, **settings))
        _stopping.clear()
        server.run(sockets=[sock])
    if not server.started:
        return STARTUP_FAILURE
    return FORCED_EXIT if server.force_exit else 0


def stopping() -> bool:
    """Whether this process's server has begun to stop.

    A response that never ends by itself (the dashboard's live feed) ends when it has: uvicorn
    waits for every response before it stops, and cancels the ones left only after its
    graceful timeout (seconds), with an error line.
    """
    return _stopping.is_set()


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own raises the signal again once it has stopped, so that the process dies
        # of it: status 143 for a SIGTERM, which Docker and systemd report as a failure.
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        _stopping.set()
        await super().shutdown(sockets)


class _JsonLines(logging.Handler):
    """uvicorn's own records (a failed request, a task cancelled at shutdown) as JSON lines
    like ours, so that a process's stderr stays one JSON object per line."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"level": record.levelname.lower(), "message": record.getMessage()}
        if record.exc_info:
            fields["error"] = logging.Formatter().formatException(record.exc_info)
        log("uvicorn", **fields)


_UVICORN_LOGS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"json": {"()": _JsonLines}},
    "loggers": {"uvicorn": {"handlers": ["json"], "propagate": False}},
}


def http_url(host: str, port: int) -> str:
    """The address of `host:port` as a URL, where an IPv6 address goes in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` as uvicorn binds one; OSError when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_failure(exc: OSError, port: int, change: str) -> str:
    """Why `port` could not be bound, in words an operator can act on; `change` says where
    another port is chosen."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is already in use: stop what listens there, or choose another "
            f"port ({change})"
        )
    return f"cannot listen there: {exc.strerror or exc}; check the host and port"


def tune_for_ingest() -> None:
    """Interpreter settings for a process whose event loop never rests under load.

    Ingest allocates thousands of small containers per batch and makes few reference cycles, so
    the cyclic collector's passes are pure cost: the objects made at start-up (imports, config)
    are frozen out of its reach, and its first generation collects less often.
    """
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
