"""Sealed blobs: AES-256-GCM with a header naming the key, and the keyed blind index.

A sealed blob is `VERSION | key id (8 bytes) | nonce (12) | ciphertext and tag`. The key id is
the person whose key sealed it, so a reader finds the key from the blob alone, and an erasure
finds every blob sealed with a key it is about to shred. The purpose (timeline, traits,
identifier) is the associated data: a blob copied into another column does not open.
`KeyRing.seal` writes them; an empty blob stands for "nothing" (a person without traits).
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bond.errors import StorageError

VERSION = b"\x01"
KEY_BYTES = 32
NONCE_BYTES = 12
HEADER_BYTES = 1 + 8
_KEY_ID = struct.Struct(">q")

TIMELINE = b"timeline"
TRAITS = b"traits"
IDENTIFIER = b"identifier"
ALERT_SUMMARY = b"alert summary"
ALERT_PAYLOAD = b"alert payload"


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def header(key_id: int) -> bytes:
    return VERSION + _KEY_ID.pack(key_id)


def is_sealed(blob: bytes) -> bool:
    # Plaintext written before encryption is JSON, which never starts with this byte.
    return blob[:1] == VERSION


def key_id_of(blob: bytes) -> int:
    return int(_KEY_ID.unpack_from(blob, 1)[0])


def open_sealed(aead: AESGCM, blob: bytes, purpose: bytes) -> bytes:
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return aead.decrypt(nonce, blob[HEADER_BYTES + NONCE_BYTES :], purpose)
    except InvalidTag:
        raise StorageError(
            f"a sealed {purpose.decode()} blob of key {key_id_of(blob)} does not decrypt: "
            "state.db is damaged or was edited"
        ) from None


class Nonces:
    """Random nonces drawn from the OS in blocks: one system call per many sealed rows."""

    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._pool = b""
        self._at = 0

    def take(self) -> bytes:
        if self._at + NONCE_BYTES > len(self._pool):
            self._pool, self._at = os.urandom(NONCE_BYTES * self._block), 0
        nonce = self._pool[self._at : self._at + NONCE_BYTES]
        self._at += NONCE_BYTES
        return nonce


def blind(secret: bytes, kind: str, value: str) -> bytes:
    """A keyed digest of an identifier: equal values match, the value itself is not kept.

    BLAKE2b in keyed mode is a MAC, so without the secret a guessed email cannot be tested
    against the index; it is also several times cheaper than HMAC-SHA256 per lookup.
    """
    return hashlib.blake2b(f"{kind}\x00{value}".encode(), key=secret, digest_size=16).digest()
