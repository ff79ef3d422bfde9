"""`bond bench dashboard`: what each dashboard page asks of the read API, on a small state and on
a state of a million events, side by side in one run.

Both states are built the same way through the real worker (with the alert and household hooks)
from the same mix, scaled: simulated households shopping for eight weeks (identified, several
devices), anonymous shop visitors of whom some sign up and some buy, and one heavy person whose
browser sent a tenth of all events. Each call a page makes is then timed through the real app
in this process (the same ASGI app `bond api` serves, logged in with the admin token), so the
numbers are the app's and the database's work without network noise. A ratio near 1 between
the two states is the point: no page reads more when the history grows.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bond.config import AlertRule, AlertsConfig, Config
from bond.simulate.households import Settings, generate
from bond.simulate.traffic import messages
from bond.storage.eventlog import NewEvent, SqliteEventLog
from bond.storage.sqlite import connect
from engine.api import create_read_app
from engine.dashboard.health import Health
from engine.dashboard.live import LogTail
from engine.hooks import default_hooks
from engine.timeline import IdentityReader
from engine.worker import Worker

ADMIN_TOKEN = "bench-admin-token"
BASE = "http://bench"
SMALL = 10_000
WEEK_MS = 7 * 86_400_000
# The share of the events each part of the mix sends.
HOUSEHOLD_SHARE, VISITOR_SHARE, HEAVY_SHARE = 0.6, 0.3, 0.1
EVENTS_PER_HOUSEHOLD = 400  # about what eight simulated weeks of one family send
EVENTS_PER_VISITOR = 10
APPEND_CHUNK = 5000
PRODUCTS = ("speckled-mug", "indigo-bowl", "monstera", "linen-notebook", "fig-candle")


@dataclass
class State:
    """A data directory the worker has fully applied, and who to look at in it."""

    config: Config
    events: int
    build_s: float
    heavy_email: str


def run(*, events: int, keep: str | None, repeat: int, as_json: bool) -> int:
    with ExitStack() as stack:
        root = Path(keep) if keep else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        small = build(root / f"state-{SMALL}", SMALL)
        large = build(root / f"state-{events}", events)
        results = measure(small, large, repeat)
    report = {
        "states": [{"events": s.events, "build_s": round(s.build_s, 1)} for s in (small, large)],
        "calls": _compare(*results),
        "repeat": repeat,
    }
    if as_json:
        print(orjson.dumps(report).decode())
    else:
        _print(report)
    return 0


# -- building the states ----------------------------------------------------------------------


def build(data_dir: Path, events: int) -> State:
    """Fill `data_dir` with about `events` events and apply them, unless it was built before."""
    rule = AlertRule(name="big spender", kind="identified", threshold=100)
    config = Config(data_dir=data_dir, admin_token=ADMIN_TOKEN, alerts=AlertsConfig(rules=(rule,)))
    heavy_email = "heavy.buyer@example.com"
    started = time.perf_counter()
    if not (data_dir / "built").exists():
        log = SqliteEventLog(config.events_db)
        sent = 0
        for chunk in _chunks(_mix(events, heavy_email), APPEND_CHUNK):
            log.append(chunk, [])
            sent += len(chunk)
        log.close()
        worker = Worker(config, default_hooks(config))
        while worker.run_once():
            pass
        worker.close()
        (data_dir / "built").write_text(f"{sent}\n")
    sent = int((data_dir / "built").read_text())
    return State(config, sent, time.perf_counter() - started, heavy_email)


def _mix(events: int, heavy_email: str) -> Iterator[NewEvent]:
    now = int(time.time() * 1000)
    start = now - 10 * WEEK_MS
    households = max(1, int(events * HOUSEHOLD_SHARE / EVENTS_PER_HOUSEHOLD))
    families = generate(Settings(households=households, weeks=8, seed=11, start_ms=start))
    ids = itertools.count(1)
    for message in messages(families):
        yield _event(message, next(ids), now)
    rng = random.Random(11)
    for visitor in range(int(events * VISITOR_SHARE / EVENTS_PER_VISITOR)):
        yield from _visit(f"visitor-{visitor}", start + rng.randrange(8 * WEEK_MS), rng, ids, now)
    heavy = int(events * HEAVY_SHARE)
    for n in range(heavy):
        product = PRODUCTS[n % len(PRODUCTS)]
        body = _track("heavy-browser", "Product Viewed", {"product_id": product, "name": product})
        yield _event(body, next(ids), start + n * 1000)
    yield _event(
        {"type": "identify", "anonymousId": "heavy-browser", "traits": {"email": heavy_email}},
        next(ids),
        start + heavy * 1000,
    )


def _visit(
    anonymous_id: str, at: int, rng: random.Random, ids: Iterator[int], now: int
) -> Iterator[NewEvent]:
    """A shop visit: pages and products, an email for some, an order for fewer."""
    steps: list[dict[str, Any]] = []
    for n in range(EVENTS_PER_VISITOR - 2):
        product = rng.choice(PRODUCTS)
        if n % 2:
            steps.append(_track(anonymous_id, "Product Viewed", {"product_id": product}))
        else:
            page = {"path": "/product.html", "search": f"?id={product}"}
            steps.append({"type": "page", "anonymousId": anonymous_id, "properties": page})
    if rng.random() < 0.3:
        email = {"email": f"{anonymous_id}@example.com"}
        steps.append({"type": "identify", "anonymousId": anonymous_id, "traits": email})
        if rng.random() < 0.4:
            order = {"order_id": f"o-{anonymous_id}", "value": rng.choice((40, 120, 300))}
            steps.append(_track(anonymous_id, "Order Completed", {**order, "currency": "EUR"}))
    for n, step in enumerate(steps):
        yield _event(step, next(ids), min(at + n * 20_000, now))


def _track(anonymous_id: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "track", "anonymousId": anonymous_id, "event": name, "properties": properties}


def _event(message: dict[str, Any], n: int, ts: int) -> NewEvent:
    stamp = message.pop("timestamp", None)
    if isinstance(stamp, str):
        ts = int(datetime.fromisoformat(stamp).timestamp() * 1000)
    message_id = f"bench-{n}"
    agent = message.get("context", {}).get("userAgent")
    return NewEvent(
        "default",
        message_id,
        message["type"],
        message.get("anonymousId"),
        message.get("userId"),
        message.get("event"),
        ts,
        ts,
        None,
        agent,
        orjson.dumps({**message, "messageId": message_id}),
    )


def _chunks(events: Iterator[NewEvent], size: int) -> Iterator[list[NewEvent]]:
    chunk: list[NewEvent] = []
    for event in events:
        chunk.append(event)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- timing the calls ------------------------------------------------------------------------

Timings = dict[str, list[float]]


def measure(small: State, large: State, repeat: int) -> tuple[Timings, Timings]:
    """Seconds per call on each state, for every call the dashboard's pages make. The two
    states take turns call by call, so both see the same machine (it is shared and noisy)."""
    return asyncio.run(_measure(small, large, repeat))


async def _measure(small: State, large: State, repeat: int) -> tuple[Timings, Timings]:
    async with AsyncExitStack() as stack:
        sides = [await _pages(stack, state) for state in (small, large)]
        timings: tuple[Timings, Timings] = ({}, {})
        for name in sides[0]:
            for _ in range(repeat):
                for calls, timed in zip(sides, timings, strict=True):
                    timed.setdefault(name, []).append(await calls[name]())
        return timings


async def _pages(stack: AsyncExitStack, state: State) -> dict[str, Callable[[], Awaitable[float]]]:
    """Each call a page makes, as a function that makes it and returns how long it took."""
    transport = httpx.ASGITransport(app=create_read_app(state.config))
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url=f"{BASE}/dashboard/")
    )
    await _log_in(client)
    heavy = (await client.get("api/people/search", params={"q": state.heavy_email})).json()
    heavy_id = heavy["person_id"]
    households = (await client.get("api/households")).json()["households"]
    family_id = max(households, key=lambda h: h["orders"])["person"]["id"]
    paths = {
        "live: latest events": ("api/live", {}),
        "stitches: first page": ("api/stitches", {}),
        "people: search by email": ("api/people/search", {"q": state.heavy_email}),
        "person: profile (heaviest)": (f"api/persons/{heavy_id}", {}),
        "person: timeline page (heaviest)": (f"api/persons/{heavy_id}/timeline", {}),
        "person: orders (heaviest)": (f"api/persons/{heavy_id}/orders", {}),
        "person: timeline page (family)": (f"api/persons/{family_id}/timeline", {}),
        "households: first page": ("api/households", {}),
        "household: members and orders": (f"api/households/{family_id}", {}),
        "alerts: newest": ("api/alerts", {}),
    }

    def timed(path: str, params: dict[str, str]) -> Callable[[], Awaitable[float]]:
        async def call() -> float:
            began = time.perf_counter()
            response = await client.get(path, params=params)
            spent = time.perf_counter() - began
            response.raise_for_status()
            return spent

        return call

    calls = {name: timed(path, params) for name, (path, params) in paths.items()}
    calls["health: one sample"] = _health_sample(stack, state)
    return calls


async def _log_in(client: httpx.AsyncClient) -> None:
    form = (await client.get("login")).text
    token = form.split('name="form" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        "login", data={"form": token, "token": ADMIN_TOKEN}, headers={"Origin": BASE}
    )
    if response.status_code != 303:
        raise RuntimeError(f"could not log in to the dashboard: {response.status_code}")


def _health_sample(stack: AsyncExitStack, state: State) -> Callable[[], Awaitable[float]]:
    """A health sample is taken at most once a second whatever the page count; its clock here
    moves ten seconds a call, so each call takes one."""
    conn = connect(state.config.state_db, durable=False)
    conn.execute("PRAGMA query_only = ON")
    stack.callback(conn.close)
    reader = IdentityReader(conn)
    ticks = itertools.count(step=10.0)
    health = Health(
        LogTail(state.config.events_db),
        lambda: reader,
        "http://127.0.0.1:9/metrics",
        clock=lambda: float(next(ticks)),
    )

    async def call() -> float:
        began = time.perf_counter()
        await health.sample()
        return time.perf_counter() - began

    return call


# -- reporting -------------------------------------------------------------------------------


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def _compare(small: Timings, large: Timings) -> list[dict[str, Any]]:
    rows = []
    for name in small:
        s50, l50 = _ms(small[name], 0.5), _ms(large[name], 0.5)
        rows.append(
            {
                "call": name,
                "small_p50_ms": s50,
                "large_p50_ms": l50,
                "large_p99_ms": _ms(large[name], 0.99),
                "ratio_p50": round(l50 / s50, 2) if s50 else None,
            }
        )
    return rows


def _print(report: dict[str, Any]) -> None:
    small, large = report["states"]
    print(
        f"dashboard calls, {small['events']:,} events vs {large['events']:,} events "
        f"({report['repeat']} calls each, in-process ASGI, logged in)"
    )
    print(f"{'call':36} {'small p50':>10} {'large p50':>10} {'large p99':>10} {'large/small':>12}")
    for row in report["calls"]:
        print(
            f"{row['call']:36} {row['small_p50_ms']:>8.2f}ms {row['large_p50_ms']:>8.2f}ms "
            f"{row['large_p99_ms']:>8.2f}ms {row['ratio_p50']:>11}x"
        )
    print(f"states ready in {small['build_s']:.1f}s and {large['build_s']:.1f}s (built or kept)")
