"""Which 16-byte digests a set certainly lacks: a Bloom filter that grows with the set.

A key the filter was given is always reported as maybe present; a key it was not given is
reported absent except for about 1% of them. The digests are BLAKE2b outputs, uniform already,
so a key's bit positions come straight from its two 64-bit halves (h1 + i * h2, the
double-hashing scheme of Kirsch and Mitzenmacher) without hashing it again.

The capacity is not known in advance, so a full filter is followed by one twice its size
rather than rebuilt. A key may be in any of them, so their false positives add up: about 0.8%
for each filter that filled, which the doubling keeps to a few over a collector's life.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

KEY_BYTES = 16
BITS_PER_KEY = 10
HASHES = 7  # the best count for 10 bits per key: 0.8% false positives when full
_STEPS = np.arange(HASHES, dtype=np.uint64)
MIN_CAPACITY = 1 << 16
_HALVES = np.dtype("<u8")
# Below this many keys numpy's fixed cost per call (about 30 µs) is more than testing the bits
# one at a time in Python, which stops at the first clear bit: 2-3 µs a key.
_FEW = 16


class _Bloom:
    def __init__(self, capacity: int, *, bits: bytes | None = None, count: int = 0) -> None:
        if bits is None:
            size = 1 << max(capacity * BITS_PER_KEY - 1, 63).bit_length()  # a power of two
            self._bits = np.zeros(size // 8, dtype=np.uint8)
        else:
            size = len(bits) * 8
            if size < 64 or size & (size - 1):
                raise ValueError(
                    f"a filter's bits are a power of two bytes, 8 or more: {len(bits)}"
                )
            self._bits = np.frombuffer(bits, dtype=np.uint8).copy()
        self.capacity = size // BITS_PER_KEY
        self.count = count
        self._bytes = self._bits.data  # the same bits: an index gives an int at once
        self._mask = np.uint64(size - 1)
        self._int_mask = size - 1

    def _positions(self, halves: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        # An odd step visits HASHES distinct bits of a power-of-two array.
        step = halves[:, 1:] | np.uint64(1)
        return (halves[:, :1] + _STEPS * step) & self._mask

    def add(self, halves: npt.NDArray[np.uint64]) -> None:
        positions = self._positions(halves).ravel()
        bits = np.left_shift(np.uint8(1), (positions & np.uint64(7)).astype(np.uint8))
        np.bitwise_or.at(self._bits, positions >> np.uint64(3), bits)
        self.count += len(halves)

    def maybe(self, halves: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        positions = self._positions(halves)
        found = self._bits[positions >> np.uint64(3)] >> (positions & np.uint64(7))
        return (found & 1).all(axis=1)  # type: ignore[no-any-return]

    def maybe_one(self, first: int, step: int) -> bool:
        # The positions of _positions: modulo 2**64 first changes nothing under a smaller mask.
        bits, mask = self._bytes, self._int_mask
        for i in range(HASHES):
            position = (first + i * step) & mask
            if not bits[position >> 3] >> (position & 7) & 1:
                return False
        return True


class KeyFilter:
    """A growing Bloom filter over 16-byte keys, given as one bytes object of n * 16 bytes."""

    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        self._blooms = [_Bloom(max(capacity, MIN_CAPACITY))]

    @classmethod
    def restored(cls, saved: Sequence[tuple[int, bytes]]) -> KeyFilter:
        """The filter whose `saved()` gave `saved`; ValueError when it cannot be one."""
        if not saved:
            raise ValueError("a saved filter has one part or more")
        restored = cls.__new__(cls)  # without the empty part __init__ would make
        restored._blooms = [_Bloom(0, bits=bits, count=count) for count, bits in saved]
        return restored

    @property
    def count(self) -> int:
        """How many keys were added (with repeats)."""
        return sum(bloom.count for bloom in self._blooms)

    def saved(self) -> list[tuple[int, bytes]]:
        """What `restored` needs: each part's count of keys and its bits."""
        return [(bloom.count, bloom._bits.tobytes()) for bloom in self._blooms]

    def add(self, keys: bytes) -> None:
        halves = _halves(keys)
        while len(halves):
            last = self._blooms[-1]
            room = last.capacity - last.count
            if room <= 0:
                self._blooms.append(_Bloom(last.capacity * 2))
                continue
            last.add(halves[:room])
            halves = halves[room:]

    def maybe(self, keys: bytes) -> list[bool]:
        """For each key, False when it was certainly never added.

        About 0.5 µs a key in large groups, 2-3 µs in small ones.
        """
        if len(keys) < _FEW * KEY_BYTES and not len(keys) % KEY_BYTES:
            return [
                self._maybe_one(keys[at : at + KEY_BYTES]) for at in range(0, len(keys), KEY_BYTES)
            ]
        halves = _halves(keys)
        found = self._blooms[0].maybe(halves)
        for bloom in self._blooms[1:]:
            found |= bloom.maybe(halves)
        return found.tolist()  # type: ignore[no-any-return]

    def _maybe_one(self, key: bytes) -> bool:
        first = int.from_bytes(key[:8], "little")
        step = int.from_bytes(key[8:], "little") | 1
        return any(bloom.maybe_one(first, step) for bloom in self._blooms)


def _halves(keys: bytes) -> npt.NDArray[np.uint64]:
    if len(keys) % KEY_BYTES:
        raise ValueError(f"keys must be {KEY_BYTES} bytes each; got {len(keys)} bytes in all")
    return np.frombuffer(keys, dtype=_HALVES).reshape(-1, 2)
