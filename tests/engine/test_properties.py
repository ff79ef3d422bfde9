"""Random interleavings of anonymous events, identifies, aliases and resets keep the invariants."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.harness import Engine
from tests.engine.privacy.plaintext import dump

BROWSERS = 3
USERS = 4

browser = st.integers(0, BROWSERS - 1)
user = st.integers(0, USERS - 1)
ts = st.integers(0, 1000)
operation = st.one_of(
    st.tuples(st.just("track"), browser, ts),
    st.tuples(st.just("identify"), browser, ts, st.none() | user, st.none() | user),
    st.tuples(st.just("alias"), browser, ts, st.booleans(), user, user),
    st.tuples(st.just("reset"), browser),
)


Call = tuple[str, tuple[Any, ...], dict[str, Any]]


def calls(operations: list[tuple[Any, ...]]) -> list[Call]:
    """The SDK calls the operations make, with reset() turned into fresh anonymous ids."""
    generation = [0] * BROWSERS

    def anon(b: int) -> str:
        return f"browser-{b}-{generation[b]}"

    made: list[Call] = []
    for op in operations:
        kind, b = op[0], op[1]
        if kind == "track" or (kind == "identify" and op[3] is None and op[4] is None):
            made.append(("track", (anon(b), op[2]), {}))
        elif kind == "identify":
            _, _, at, u, e = op
            email = f"person-{e}@example.com" if e is not None else None
            user_id = f"user-{u}" if u is not None else None
            made.append(("identify", (anon(b), at), {"user": user_id, "email": email}))
        elif kind == "alias":
            _, _, at, from_anonymous, previous, u = op
            old = anon(previous % BROWSERS) if from_anonymous else f"user-{previous}"
            made.append(("alias", (anon(b), old, f"user-{u}", at), {}))
        else:  # reset(): the SDK forgets the user and starts a new anonymous id
            generation[b] += 1
    return made


def send(engine: Engine, made: list[Call]) -> None:
    for method, args, kwargs in made:
        getattr(engine, method)(*args, **kwargs)


def check_invariants(engine: Engine) -> None:
    conn, reader = engine.worker.conn, engine.reader
    total = conn.execute("SELECT count(*) FROM timeline").fetchone()[0]
    assert total == engine.log.head()

    # Every event belongs to exactly one person, through exactly one segment of its browser.
    roots = [r[0] for r in conn.execute("SELECT id FROM persons WHERE merged_into IS NULL")]
    owners: Counter[int] = Counter()
    for person_id in roots:
        events = reader.timeline(person_id, 500).events
        assert (
            len(events)
            == conn.execute(
                "SELECT event_count FROM persons WHERE id = ?", (person_id,)
            ).fetchone()[0]
        )
        owners.update(e["seq"] for e in events)
    assert sorted(owners) == list(range(1, total + 1))
    assert set(owners.values()) <= {1}

    # A merged person had no identifier when it was merged (identifiers are never removed), so
    # no two identified persons were ever merged; every identifier points at a live person.
    assert not conn.execute(
        "SELECT count(*) FROM identifier_index i JOIN persons p ON p.id = i.person_id "
        "WHERE p.merged_into IS NOT NULL"
    ).fetchone()[0]
    for (other,) in conn.execute(
        "SELECT other_person_id FROM identity_events WHERE kind IN ('merged', 'aliased') "
        "AND other_person_id IS NOT NULL"
    ):
        assert reader.profile(other)["user_ids"] == []  # type: ignore[index]
        assert reader.profile(other)["emails"] == []  # type: ignore[index]
    assert not conn.execute(
        "SELECT count(*) FROM segments s JOIN persons p ON p.id = s.person_id "
        "WHERE p.merged_into IS NOT NULL"
    ).fetchone()[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(operation, max_size=40), batch_size=st.sampled_from([1, 3, 1000]))
def test_random_interleavings_keep_the_invariants(
    operations: list[tuple[Any, ...]], batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Path(tmp) / "live", batch_size=batch_size, max_user_ids=2)
        replay = Engine(Path(tmp) / "replay", batch_size=1000, max_user_ids=2)
        try:
            # Applied as the events arrive (in several runs), then replayed from zero at once.
            made = calls(operations)
            half = len(made) // 2
            send(engine, made[:half])
            engine.run()
            send(engine, made[half:])
            engine.run()
            check_invariants(engine)

            send(replay, made)
            replay.run()
            assert dump(replay.worker.conn) == dump(engine.worker.conn)
        finally:
            engine.close()
            replay.close()
