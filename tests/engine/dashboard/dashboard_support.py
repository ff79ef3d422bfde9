"""Shared pieces of the dashboard tests: an engine with the default hooks, shop-like visits,
simulated households, and a logged-in client of the real read app.

Not a conftest.py: a second module named conftest would shadow the root one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

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


class Client:
    """Requests to the real read app in this process (httpx's ASGI transport) on one event
    loop, keeping cookies the way a browser does."""

    def __init__(self, config: Config) -> None:
        self.runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=create_read_app(config))
        self.http = httpx.AsyncClient(transport=transport, base_url=BASE)

    @property
    def cookies(self) -> httpx.Cookies:
        return self.http.cookies

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.runner.run(self.http.get(path, **options))

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.runner.run(self.http.post(path, **options))

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.close()


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
