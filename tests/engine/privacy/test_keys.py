"""Per-person keys in the real worker: nothing personal in state.db's bytes, lookups by email
still work, merged and shared histories stay readable, and erasure shreds every key folded in."""

from __future__ import annotations

from pathlib import Path

import pytest

from bond.errors import StorageError
from engine.privacy import crypto, requests
from engine.privacy.keys import KeyRing
from tests.engine.harness import Engine

SECRET_TRAIT = "Hortensia Quillfeather"
SECRET_PROPERTY = "engraving: to my dearest Q"


def state_bytes(data_dir: Path) -> bytes:
    return b"".join(
        p.read_bytes().lower() for p in data_dir.iterdir() if p.name.startswith("state.db")
    )


def erase(engine: Engine, kind: requests.Kind, value: str) -> dict[str, int]:
    request_id = requests.enqueue(engine.worker.conn, kind, value, "test")
    engine.worker.run_erasures()
    found = requests.public(engine.worker.conn, request_id)
    assert found is not None and found["state"] == "done"
    return dict(found["result"]["counts"])


def test_state_holds_no_plaintext_yet_reads_and_lookups_work(engine: Engine) -> None:
    engine.send(
        "track", anon="laptop", ts=100, event="Gift Added", properties={"note": SECRET_PROPERTY}
    )
    engine.send(
        "identify",
        anon="laptop",
        user="u-42",
        ts=200,
        traits={"email": "Hortensia@Example.com", "name": SECRET_TRAIT},
    )
    engine.run()

    person = engine.person(email="hortensia@example.com")
    assert person["user_ids"] == ["u-42"] and person["emails"] == ["hortensia@example.com"]
    assert person["traits"]["name"] == SECRET_TRAIT
    assert engine.timeline(user_id="u-42")[-1]["properties"] == {"note": SECRET_PROPERTY}
    raw = state_bytes(engine.config.data_dir)
    for secret in ("hortensia@example.com", SECRET_TRAIT, SECRET_PROPERTY, "u-42"):
        assert secret.lower().encode() not in raw, secret


def test_a_merged_history_is_sealed_with_both_keys_and_erasing_shreds_both(engine: Engine) -> None:
    engine.track("phone", 100)
    engine.run()  # the phone's anonymous person exists, its event sealed with its own key
    engine.identify("phone", 200, email="merged@example.com")
    engine.track("laptop", 300)
    engine.identify("laptop", 400, email="merged@example.com")
    engine.run()
    conn = engine.worker.conn
    survivor = engine.person(email="merged@example.com")["id"]
    key_ids = {crypto.key_id_of(data) for (data,) in conn.execute("SELECT data FROM timeline")}
    assert len(key_ids) == 2 and survivor in key_ids
    assert len(engine.timeline(email="merged@example.com")) == 4

    counts = erase(engine, "email", "merged@example.com")

    assert counts["persons"] == counts["keys"] == 2
    for key_id in key_ids:
        assert KeyRing(conn).lookup(key_id) is None
    assert conn.execute("SELECT count(*) FROM timeline").fetchone()[0] == 0


def test_events_handed_over_by_a_split_stay_readable_when_the_first_person_goes(
    engine: Engine,
) -> None:
    # Ann logs in on the family laptop; an event stamped after Bob's later login reaches the
    # worker before it, so it is sealed with Ann's key and then handed to Bob by the split.
    engine.identify("laptop", 100, user="ann")
    engine.track("laptop", 300, event="Bob's late click")
    engine.run()
    engine.identify("laptop", 200, user="bob")
    engine.run()
    bob_before = engine.timeline(user_id="bob")
    assert [e["event"] for e in bob_before] == ["Bob's late click", None]

    counts = erase(engine, "user_id", "ann")

    assert counts["timeline_resealed"] == 1
    assert engine.timeline(user_id="bob") == bob_before
    assert engine.reader.find(user_id="ann") is None
    # Ann's range of the laptop now belongs to a new anonymous person with no history.
    assert engine.reader.find(anonymous_id="laptop") == engine.person(user_id="bob")["id"]


def test_erased_ids_are_never_handed_out_again(engine: Engine) -> None:
    engine.identify("a", 100, user="first")
    engine.run()
    erased = engine.person(user_id="first")["id"]
    erase(engine, "user_id", "first")
    engine.identify("b", 200, user="second")
    engine.run()
    assert engine.person(user_id="second")["id"] > erased


@pytest.mark.parametrize("purpose", [crypto.TRAITS, crypto.IDENTIFIER])
def test_a_blob_moved_to_another_column_does_not_open(engine: Engine, purpose: bytes) -> None:
    engine.identify("a", 100, user="u", email="u@example.com")
    engine.run()
    (blob,) = engine.worker.conn.execute("SELECT data FROM timeline").fetchone()
    with pytest.raises(StorageError, match="does not decrypt"):
        KeyRing(engine.worker.conn).open(blob, purpose)
