"""Per-person data keys and the blind-index secret, in their own tables of state.db.

Every person gets a random 256-bit key when created; what is personal about them (identifiers,
traits, the data of their events) is sealed with it. Erasing a person deletes the key, so any
copy of the ciphertext left anywhere (a freed page, a replica, a copy taken after the erasure)
can no longer be read. A person folded into another keeps its own key: the survivor's history
holds blobs of both, and erasing the survivor shreds both.

The worker creates keys inside its batch transaction and caches the AEAD objects, so a batch
costs one key lookup per person it touches (loaded with the person's row) and one encryption
per event. Readers never create keys.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bond.errors import StorageError
from engine.privacy import crypto

INDEX_SECRET = "identifier_index"
# Past this many cached AEAD objects the cache starts over (each is small, but unbounded is not).
CACHE_LIMIT = 100_000
_CHUNK = 10_000


def index_secret(conn: sqlite3.Connection) -> bytes:
    row = conn.execute(
        "SELECT secret FROM privacy_secrets WHERE name = ?", (INDEX_SECRET,)
    ).fetchone()
    if row is None:
        raise StorageError("state.db has no identifier index secret; open it with the worker first")
    return bytes(row[0])


def ensure_index_secret(conn: sqlite3.Connection) -> None:
    """Create the blind-index secret once (inside the caller's transaction)."""
    conn.execute(
        "INSERT OR IGNORE INTO privacy_secrets (name, secret) VALUES (?, ?)",
        (INDEX_SECRET, crypto.new_key()),
    )


class KeyRing:
    def __init__(self, conn: sqlite3.Connection, secret: bytes | None = None) -> None:
        self.conn = conn
        self.nonces = crypto.Nonces()
        self._secret = secret
        self.reset()

    def reset(self) -> None:
        """Forget cached keys (after a rollback or an erasure): the table is the truth."""
        self._aeads: dict[int, AESGCM] = {}
        # person id -> (AEAD, blob header): what sealing needs, in one dict lookup per row.
        self._sealers: dict[int, tuple[AESGCM, bytes]] = {}
        self._new: list[tuple[int, bytearray]] = []

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = index_secret(self.conn)
        return self._secret

    def blind(self, kind: str, value: str) -> bytes:
        return crypto.blind(self.secret, kind, value)

    # -- the worker's side: keys created with their persons, written at flush ---------------

    def create(self, person_id: int) -> AESGCM:
        key = crypto.new_key()
        self._new.append((person_id, bytearray(key)))  # bound without an adapter lookup
        return self._remember(person_id, key)

    def remember(self, person_id: int, key: bytes | None) -> None:
        """Cache a key loaded with the person's row (None: the person has none yet)."""
        if key is not None and person_id not in self._aeads:
            self._remember(person_id, key)

    def sealer(self, person_id: int) -> AESGCM:
        """The AEAD of a person, creating their key if a legacy person has none yet."""
        aead = self._aeads.get(person_id) or self.lookup(person_id)
        return aead if aead is not None else self.create(person_id)

    def seal(self, person_id: int, plaintext: bytes, purpose: bytes) -> bytes:
        aead, head = self._sealers.get(person_id) or self._sealer(person_id)
        nonce = self.nonces.take()
        return head + nonce + aead.encrypt(nonce, plaintext, purpose)

    def seal_all(self, items: list[tuple[int, bytes]], purpose: bytes) -> list[bytearray]:
        """Seal (person id, plaintext) pairs: the worker's per-event cost, kept to one AEAD call.

        The nonces come from one draw of OS randomness for the whole list. The blobs are
        bytearrays because they go straight into rows: sqlite3 binds a bytearray at once, but
        looks for an adapter for bytes (two failed attribute lookups), which costs more than
        the copy.
        """
        size = crypto.NONCE_BYTES
        pool = os.urandom(size * len(items))
        get, new, join = self._sealers.get, self._sealer, bytearray().join
        sealed = []
        at = 0
        for person_id, plaintext in items:
            aead, head = get(person_id) or new(person_id)
            nonce = pool[at : at + size]
            at += size
            sealed.append(join((head, nonce, aead.encrypt(nonce, plaintext, purpose))))
        return sealed

    def _sealer(self, person_id: int) -> tuple[AESGCM, bytes]:
        sealer = self._sealers[person_id] = (self.sealer(person_id), crypto.header(person_id))
        return sealer

    def flush(self) -> None:
        if self._new:
            self.conn.executemany(
                "INSERT OR REPLACE INTO person_keys (person_id, key) VALUES (?, ?)", self._new
            )
            self._new = []

    # -- everyone's side ----------------------------------------------------------------------

    def lookup(self, person_id: int) -> AESGCM | None:
        aead = self._aeads.get(person_id)
        if aead is not None:
            return aead
        row = self.conn.execute(
            "SELECT key FROM person_keys WHERE person_id = ?", (person_id,)
        ).fetchone()
        return self._remember(person_id, bytes(row[0])) if row else None

    def load(self, person_ids: Iterable[int]) -> None:
        """Fetch the keys of many persons in few queries (a timeline page, an erasure)."""
        missing = sorted({p for p in person_ids if p not in self._aeads})
        for first in range(0, len(missing), _CHUNK):
            chunk = missing[first : first + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for person_id, key in self.conn.execute(
                f"SELECT person_id, key FROM person_keys WHERE person_id IN ({marks})", chunk
            ):
                self._remember(person_id, bytes(key))

    def open(self, blob: bytes, purpose: bytes) -> bytes | None:
        """The plaintext of a sealed blob; None when it is empty or its key was shredded."""
        if not blob:
            return None
        aead = self.lookup(crypto.key_id_of(blob))
        return None if aead is None else crypto.open_sealed(aead, blob, purpose)

    def shred(self, person_ids: Iterable[int]) -> int:
        ids = sorted(set(person_ids))
        removed = 0
        for first in range(0, len(ids), _CHUNK):
            chunk = ids[first : first + _CHUNK]
            marks = ",".join("?" * len(chunk))
            removed += self.conn.execute(
                f"DELETE FROM person_keys WHERE person_id IN ({marks})", chunk
            ).rowcount
        self.reset()
        return removed

    def _remember(self, person_id: int, key: bytes) -> AESGCM:
        if len(self._aeads) >= CACHE_LIMIT:
            self._aeads, self._sealers = {}, {}
        aead = self._aeads[person_id] = AESGCM(key)
        return aead
