"""What the collector and its commit process say to each other over their two pipes.

The collector sends frames, each a request's rows: a 4-byte length, then MessagePack. The
commit process answers each commit with an Ack saying how many frames it covered, in the
order they were sent, and what came of them. msgspec writes the rows' NamedTuples as arrays
and reads them back as the same types, so neither side builds a dict per row.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

import msgspec

from bond.storage.eventlog import NewEvent, RejectedEvent


class Group(NamedTuple):
    events: list[NewEvent]
    rejected: list[RejectedEvent]


class Ack(NamedTuple):
    frames: int  # how many frames, the oldest not yet answered first, this commit covered
    events: int
    new: int  # events stored; the others were duplicates
    rejected: int
    seconds: float
    error: str | None = None  # why the commit failed; its requests were not stored


READY = Ack(0, 0, 0, 0, 0.0)  # the first answer: the log is open and takes commits

_HEADER = struct.Struct("<I")
_encode = msgspec.msgpack.Encoder().encode
decode_group = msgspec.msgpack.Decoder(Group).decode
decode_ack = msgspec.msgpack.Decoder(Ack).decode


def group_frame(events: Sequence[NewEvent], rejected: Sequence[RejectedEvent]) -> bytes:
    return _frame(_encode((events, rejected)))


def ack_frame(ack: Ack) -> bytes:
    return _frame(_encode(ack))


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


class FrameReader:
    """Whole frames out of a byte stream that arrives in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """The payloads completed by `data`, in order; a partial frame waits for the rest."""
        buffer = self._buffer
        buffer += data
        payloads = []
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if end > len(buffer):
                break
            payloads.append(bytes(buffer[start + _HEADER.size : end]))
            start = end
        del buffer[:start]
        return payloads
