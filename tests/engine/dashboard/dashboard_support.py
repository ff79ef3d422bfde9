"""Shared pieces of the dashboard tests: an engine with the default hooks, shop-like visits,
simulated households, and a logged-in client of the real read app.

Not a conftest.py: a second module named conftest would shadow the root one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bond.config import Config
from bond.simulate.households import Household
from bond.simulate.traffic import messages
from conftest import ADMIN_TOKEN, WRITE_KEY
from engine.api import create_read_app
from engine.hooks import default_hooks
from engine.timeline import IdentityReader
from engine.worker import Worker
from tests.engine.harness import Engine

BASE = "http://testserver"
T = TypeVar("T")


class HookedEngine(Engine):
    """The in-process engine with the hooks `bond worker` runs (alerts, households)."""

    def __init__(self, data_dir: Path, config: Config | None = None) -> None:
        super().__init__(data_dir)
        self.worker.close()
        self.config = replace(
            config or self.config,
            data_dir=data_dir,
            admin_token=ADMIN_TOKEN,
            sources=(replace(self.config.sources[0], write_key=WRITE_KEY),),
        )
        self.worker = Worker(self.config, default_hooks(self.config))
        self.reader = IdentityReader(self.worker.conn)

    def page(self, anon: str, ts: int, path: str, search: str = "") -> None:
        where = {"path": path, "search": search}
        title = f"{path} · Fern & Kiln"
        self.send(
            "page", anon=anon, ts=ts, properties={**where, "title": title}, context={"page": where}
        )

    def view(self, anon: str, ts: int, name: str, price: float = 24.0) -> None:
        props = {"product_id": name.lower().replace(" ", "-"), "name": name, "price": price}
        self.send("track", anon=anon, ts=ts, event="Product Viewed", properties=props)

    def order(self, anon: str, ts: int, order_id: str, value: float) -> None:
        props = {"order_id": order_id, "value": value, "currency": "EUR"}
        self.send("track", anon=anon, ts=ts, event="Order Completed", properties=props)

    def households(self, households: list[Household]) -> None:
        """Send simulated households' messages (sessions, logins, orders) in time order."""
        for message in messages(households):
            ts = int(datetime.fromisoformat(message.pop("timestamp")).timestamp() * 1000)
            self.send(
                message.pop("type"),
                anon=message.pop("anonymousId", None),
                user=message.pop("userId", None),
                event=message.pop("event", None),
                ts=ts,
                **{k: v for k, v in message.items() if k != "messageId"},
            )


class Loop:
    """An event loop on a thread of its own, for sync tests to drive async code. Not the main
    thread's: Playwright's sync API keeps a loop running there once an e2e test has run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Client:
    """Requests to the real read app in this process (httpx's ASGI transport) on one event
    loop, keeping cookies the way a browser does."""

    def __init__(
        self, config: Config, *, app: Any = None, peer: tuple[str, int] = ("127.0.0.1", 123)
    ) -> None:
        """`app`: another client's, to be a second browser (from `peer`) on the same server."""
        self.loop = Loop()
        self.app = app or create_read_app(config)
        transport = httpx.ASGITransport(app=self.app, client=peer)
        self.http = httpx.AsyncClient(transport=transport, base_url=BASE)

    @property
    def cookies(self) -> httpx.Cookies:
        return self.http.cookies

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.loop.run(self.http.get(path, **options))

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.loop.run(self.http.post(path, **options))

    def close(self) -> None:
        self.loop.run(self.http.aclose())
        self.loop.close()


@contextmanager
def dashboard(config: Config) -> Iterator[Client]:
    """The real read app on a data directory, with no session yet."""
    client = Client(config)
    try:
        yield client
    finally:
        client.close()


def log_in(client: Client, token: str = ADMIN_TOKEN) -> httpx.Response:
    """Log in through the form, as a browser does: GET it, POST it back with its token."""
    form = client.get("/dashboard/login")
    form_token = form.text.split('name="form" value="', 1)[1].split('"', 1)[0]
    return client.post(
        "/dashboard/login",
        data={"form": form_token, "token": token},
        headers={"Origin": BASE},
        follow_redirects=False,
    )


def csrf(client: Client) -> str:
    token: str = client.get("/dashboard/api/session").json()["csrf"]
    return token
