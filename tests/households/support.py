"""Small real inputs for the household tests: sessions of scripted people, simulated traffic."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence

import numpy as np

from bond.simulate.households import Household, Settings, generate
from bond.simulate.offline import applied, batches
from bond.simulate.traffic import messages
from engine.hooks import AppliedEvent
from engine.households.features import SessionFeatures
from engine.households.processor import HouseholdProcessor


def person_session(
    rng: np.random.Generator, hour: float, device: str, kind: str, tastes: Sequence[str]
) -> SessionFeatures:
    """One session of a scripted person: around `hour`, on `device`, viewing their `tastes`."""
    angle = 2 * math.pi * ((hour + rng.normal(0, 1.0)) % 24) / 24
    counts: dict[str, float] = {}
    for pick in rng.choice(list(tastes), size=4):
        counts[str(pick)] = counts.get(str(pick), 0.0) + 1.0
    return SessionFeatures(
        math.sin(angle),
        math.cos(angle),
        float(rng.random() < 2 / 7),
        device,
        kind,
        tuple(sorted(counts.items())),
    )


def simulated(households: int, seed: int, **settings: object) -> list[Household]:
    return generate(Settings(households=households, seed=seed, **settings))  # type: ignore[arg-type]


def account_event(
    device: str,
    at: int,
    name: str = "Product Viewed",
    properties: dict[str, object] | None = None,
    *,
    seq: int = 0,
    agent: str | None = None,
) -> AppliedEvent:
    """An event of the one shared, identified account (person 1) that these tests script, from
    browser `device`, in UTC."""
    return AppliedEvent(
        seq=seq,
        person_id=1,
        identified=True,
        source="default",
        type="track",
        event=name,
        anonymous_id=device,
        user_id="fam",
        timestamp=at,
        received_at=0,
        user_agent=agent,
        properties=properties if properties is not None else {},
        traits={},
        context={"timezone": "UTC"},
    )


def event_batches(households: list[Household], size: int) -> list[list[AppliedEvent]]:
    """The households' traffic as the worker would hand it to the hook, `size` events a batch."""
    person_of = {h.account: h.index + 1 for h in households}
    return list(batches(applied(messages(households), person_of), size))


def feed(
    conn: sqlite3.Connection, processor: HouseholdProcessor, chunks: list[list[AppliedEvent]]
) -> None:
    for chunk in chunks:
        conn.execute("BEGIN")
        processor.process(conn, chunk)
        conn.execute("COMMIT")
