"""`bond demo`: the whole stack on the embedded default, and the demo storefront beside it.

The collector, the worker and the read API run as child processes (the same commands a user
runs by hand); the storefront is a small static server in this process. One data directory
holds everything, so a second run carries on with the first run's people.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from bond import config as config_module
from bond.bench.processes import running
from bond.config import Config
from bond.errors import BondError, ConfigError
from bond.serving import bind_failure, http_url, listen_socket
from bond.storage.dirlock import COLLECTOR, WORKER, holding

SITE_DIR = Path(__file__).resolve().parent.parent / "demo_site"
# The placeholders of the snippet in sdk/README.md. A site owner replaces them by hand; the
# storefront keeps the snippet exactly as pasted and its server fills them in as it serves.
SNIPPET_HOST = "'https://bond.example.com'"
SNIPPET_WRITE_KEY = "'YOUR_WRITE_KEY'"
TOKEN_FILE = "demo-admin-token"
DEMO_CONFIG = "demo-bond.toml"
# Without rules a new demo's Alerts view stays empty whatever the shoppers do. Only the demo adds
# these, and only to a configuration with no rules of its own: `bond worker` has none by default.
SAMPLE_RULES = """# Added by `bond demo` because the configuration had no alert rules.
[[alerts.rules]]
name = "demo: buyer identified"
kind = "identified"
threshold = 15
currency = "EUR"

[[alerts.rules]]
name = "demo: large order"
kind = "event"
event = "Order Completed"
where = ["value >= 100"]
currency = "EUR"
"""


def fill_snippet(html: str, *, collector_url: str, write_key: str) -> str:
    """The page as the browser gets it: the README's snippet with this stack's values."""
    return html.replace(SNIPPET_HOST, repr(collector_url)).replace(
        SNIPPET_WRITE_KEY, repr(write_key)
    )


class _ShopHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, collector_url: str, write_key: str, **kwargs: Any) -> None:
        self.collector_url = collector_url
        self.write_key = write_key
        super().__init__(*args, directory=str(SITE_DIR), **kwargs)

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            super().do_GET()
            return
        body = fill_snippet(
            path.read_text(), collector_url=self.collector_url, write_key=self.write_key
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        # The pages carry this stack's collector address, which changes from run to run.
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # A line per asset on stderr would drown the stack's own JSON logs.
        return


class _IPv6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class ShopServer:
    """The demo storefront served on `host:port` (0 picks a free port) from a background thread."""

    def __init__(
        self, *, collector_url: str, write_key: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        handler = partial(_ShopHandler, collector_url=collector_url, write_key=write_key)
        try:
            server = _IPv6HTTPServer if ":" in host else ThreadingHTTPServer
            self.httpd = server((host, port), handler)
        except OSError as exc:
            reason = bind_failure(exc, port, "--shop-port")
            raise BondError(f"cannot serve the demo shop on {host}:{port}: {reason}") from exc
        self.httpd.daemon_threads = True
        self.url = http_url(host, self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="demo-shop")

    def start(self) -> ShopServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        # Never started (the demo failed before it opened): shutdown() would wait forever.
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()


def admin_token(config: Config) -> tuple[str, str]:
    """The read API's token and where it comes from: the configuration, else a generated one
    kept in the data directory so that the next run accepts the same token."""
    if config.admin_token:
        return config.admin_token, "BOND_ADMIN_TOKEN (or admin_token in bond.toml)"
    path = config.data_dir.resolve() / TOKEN_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip(), f"generated, kept in {path}"


def with_sample_rules(config: Config, config_file: str | None) -> tuple[str | None, Config]:
    """The configuration file the demo's processes read, and what it holds: the user's own
    when it sets alert rules, else a copy of it (or of nothing) in the data directory with the
    sample rules appended, since TOML has no include."""
    if config.alerts.rules:
        return config_file, config
    if config_file is None and os.environ.get("BOND_CONFIG"):
        config_file = os.environ["BOND_CONFIG"]
    if config_file is None and Path("bond.toml").is_file():
        config_file = "bond.toml"
    own = Path(config_file).read_text() if config_file else ""
    path = config.data_dir.resolve() / DEMO_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    # The copy holds whatever secrets the user's file does.
    path.touch(mode=0o600)
    path.write_text("\n".join(part for part in (own.rstrip(), SAMPLE_RULES) if part))
    try:
        return str(path), config_module.load(path, data_dir=config.data_dir)
    except ConfigError:
        # A file that spells its rules as `rules = []` takes no appended [[alerts.rules]].
        path.unlink()
        return config_file, config


def alerts_line(config: Config, samples_in: str | None) -> str:
    """What alerts the demo raises and where they go, with how to send them to Discord."""
    count = len(config.alerts.rules)
    rules = f"{count} sample rules in {samples_in}" if samples_in else f"{count} rules"
    if config.alerts.webhook_url is not None:
        return f"{rules}, sent to the Discord webhook"
    return (
        f"{rules}; no Discord webhook, so they wait in the dashboard: "
        "set BOND_DISCORD_WEBHOOK_URL and restart to send them"
    )


def run_demo(
    config: Config,
    *,
    config_file: str | None,
    host: str,
    port: int,
    api_port: int,
    shop_port: int,
) -> int:
    if len({port, api_port, shop_port}) < 3:
        raise BondError(
            f"the demo needs three different ports, not --port {port}, --api-port {api_port} "
            f"and --shop-port {shop_port}"
        )
    data_dir = config.data_dir.resolve()
    _require_unheld(data_dir)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    token, token_source = admin_token(config)
    config_file, alerting = with_sample_rules(config, config_file)
    samples_in = config_file if alerting is not config else None
    common = ["bond.cli", "--data-dir", str(data_dir)]
    if config_file:
        common += ["--config", config_file]
    # The read API's health view finds the collector through the configuration, which
    # --host and --port do not reach by themselves.
    env = {
        "BOND_ADMIN_TOKEN": token,
        "BOND_COLLECTOR_HOST": host,
        "BOND_COLLECTOR_PORT": str(port),
    }
    collector_url = http_url(host, port)
    api_url = f"{http_url(host, api_port)}/api"
    stop = threading.Event()

    with ExitStack() as stack:
        # Every port is taken before anything starts, so that a busy one is refused at once.
        shop = ShopServer(
            collector_url=collector_url,
            write_key=config.sources[0].write_key,
            host=host,
            port=shop_port,
        )
        stack.callback(shop.stop)
        # A child on a taken port would exit at once too, but say less (see its log).
        _require_free(host, port, "--port")
        _require_free(host, api_port, "--api-port")
        children = {
            "collector": stack.enter_context(
                _child(
                    [*common, "serve", "--host", host, "--port", str(port)],
                    f"{collector_url}/healthz",
                    env,
                    logs / "collector.log",
                )
            ),
            "worker": stack.enter_context(
                _child([*common, "worker"], None, env, logs / "worker.log")
            ),
            "read API": stack.enter_context(
                _child(
                    [*common, "api", "--host", host, "--port", str(api_port)],
                    f"{api_url}/status",
                    env,
                    logs / "api.log",
                )
            ),
        }
        shop.start()
        stack.enter_context(_stop_on_signals(stop))
        print(
            f"Bond demo on {data_dir}\n"
            f"  storefront  {shop.url}/\n"
            f"  collector   {collector_url}/  (SDK at {collector_url}/sdk/v1/bond.js)\n"
            f"  dashboard   {http_url(host, api_port)}/dashboard/  "
            f"(log in with the admin token: {token_source})\n"
            f"  read API    {api_url}/status  (Bearer, the same token)\n"
            f"  alerts      {alerts_line(alerting, samples_in)}\n"
            f"  logs        {logs}/\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while not stop.wait(0.5):
            for name, proc in children.items():
                if proc.poll() is not None:
                    raise BondError(f"the {name} exited with {proc.returncode}; see {logs}/")
    print("Bond demo stopped.", flush=True)
    return 0


def _require_free(host: str, port: int, flag: str) -> None:
    try:
        listen_socket(host, port).close()
    except OSError as exc:
        reason = bind_failure(exc, port, flag)
        raise BondError(f"cannot start the demo on {host}:{port}: {reason}") from exc


def _require_unheld(data_dir: Path) -> None:
    """Refuse a data directory a collector or worker already runs on. The demo's own would be
    refused too, but only once the demo had emptied their log files to start them."""
    for role in (COLLECTOR, WORKER):
        with holding(data_dir, role):
            pass


@contextmanager
def _child(
    args: list[str], ready_url: str | None, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    try:
        with running(args, ready_url=ready_url, env=env, log=log) as proc:
            yield proc
    except RuntimeError as exc:
        raise BondError(f"{exc}; see {log}") from exc


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
