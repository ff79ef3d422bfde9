"""The identity state as plaintext, for tests that compare two states built from one log.

Two data directories seal the same values with different keys and nonces, so their bytes
differ; what must be equal is what the sealed blobs say.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from engine.privacy import crypto
from engine.privacy.keys import KeyRing


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    keys = KeyRing(conn)

    def opened(blob: bytes, purpose: bytes) -> Any:
        plain = keys.open(blob, purpose)
        return plain if plain is None or purpose == crypto.IDENTIFIER else orjson.loads(plain)

    return {
        "persons": [
            (*row[:6], opened(row[6], crypto.TRAITS))
            for row in conn.execute("SELECT * FROM persons ORDER BY id")
        ],
        "identifiers": sorted(
            (kind, opened(sealed, crypto.IDENTIFIER), person_id, added_at)
            for kind, person_id, added_at, sealed in conn.execute(
                "SELECT kind, person_id, added_at, sealed FROM identifier_index"
            )
        ),
        "browsers": conn.execute("SELECT * FROM browsers ORDER BY 1").fetchall(),
        "segments": conn.execute("SELECT * FROM segments ORDER BY 1").fetchall(),
        "timeline": [
            (*row[:5], opened(row[5], crypto.TIMELINE))
            for row in conn.execute("SELECT * FROM timeline ORDER BY 1, 2, 3")
        ],
        "identity_events": conn.execute("SELECT * FROM identity_events ORDER BY 1").fetchall(),
    }
