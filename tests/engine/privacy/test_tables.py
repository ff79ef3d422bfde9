"""A table another component keys by person id is found, erased and exported without being
named anywhere in the privacy code (verification's, or one added later)."""

from __future__ import annotations

from engine.privacy import requests
from engine.privacy.export import export_person
from engine.privacy.tables import other_person_tables
from tests.engine.harness import Engine


def test_rows_keyed_by_person_id_elsewhere_are_exported_and_erased(engine: Engine) -> None:
    conn = engine.worker.conn
    conn.execute("CREATE TABLE loyalty_cards (person_id INTEGER, card TEXT, issued BLOB)")
    engine.identify("laptop", 100, user="ann")
    engine.identify("other", 100, user="bob")
    engine.run()
    ann, bob = engine.person(user_id="ann")["id"], engine.person(user_id="bob")["id"]
    conn.executemany("INSERT INTO verified_persons VALUES (?, 100, 1)", [(ann,), (bob,)])
    conn.executemany(
        "INSERT INTO loyalty_cards VALUES (?, ?, x'00ff')", [(ann, "gold"), (bob, "tin")]
    )
    assert other_person_tables(conn) == ["loyalty_cards", "verified_persons"]

    document = export_person(conn, engine.log, ann)
    assert document is not None
    assert document["other"] == {
        "loyalty_cards": [{"person_id": ann, "card": "gold", "issued": "00ff"}],
        "verified_persons": [{"person_id": ann, "verified_at": 100, "seq": 1}],
    }

    requests.enqueue(conn, "user_id", "ann", "test")
    engine.worker.run_erasures()

    assert conn.execute("SELECT person_id FROM loyalty_cards").fetchall() == [(bob,)]
    assert conn.execute("SELECT person_id FROM verified_persons").fetchall() == [(bob,)]
