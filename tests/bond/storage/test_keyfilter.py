"""The Bloom filter never forgets a key it was given and rarely claims one it was not."""

from __future__ import annotations

import os

import pytest

from bond.storage.keyfilter import KeyFilter


def test_every_key_added_is_maybe_present_as_the_filter_grows() -> None:
    keys = os.urandom(16 * 300_000)
    grown = KeyFilter(capacity=1)  # the smallest filter, so that it grows twice
    for at in range(0, len(keys), 16 * 70_000):
        grown.add(keys[at : at + 16 * 70_000])
    assert grown.count == 300_000
    assert all(grown.maybe(keys))
    assert all(grown.maybe(keys[16 * 1234 : 16 * 1240]))  # a few at a time as well


def test_keys_never_added_are_mostly_reported_absent() -> None:
    known = KeyFilter(capacity=100_000)
    known.add(os.urandom(16 * 100_000))
    others = known.maybe(os.urandom(16 * 100_000))
    assert sum(others) / len(others) < 0.02
    assert not any(KeyFilter().maybe(os.urandom(16 * 1000)))  # empty: nothing is present


def test_keys_must_be_whole_digests() -> None:
    with pytest.raises(ValueError, match="16 bytes each; got 17"):
        KeyFilter().add(os.urandom(17))


def test_a_few_keys_at_a_time_get_the_answers_of_a_large_group() -> None:
    # Below 16 keys the bits are tested in Python rather than numpy: the same positions.
    grown = KeyFilter(capacity=1)
    grown.add(os.urandom(16 * 200_000))  # two filters, so that both are asked
    keys = os.urandom(16 * 20_000)
    together = grown.maybe(keys)
    assert sum(together) > 0  # some false positives, for the two paths to agree on
    apart = [
        found
        for at in range(0, len(keys), 16 * 15)
        for found in grown.maybe(keys[at : at + 16 * 15])
    ]
    assert apart == together


def test_a_restored_filter_answers_as_the_saved_one_and_goes_on_growing() -> None:
    saved = KeyFilter(capacity=1)
    added = os.urandom(16 * 150_000)
    saved.add(added)  # two parts
    restored = KeyFilter.restored(saved.saved())
    assert restored.count == saved.count == 150_000
    others = os.urandom(16 * 50_000)
    assert restored.maybe(others) == saved.maybe(others)
    assert all(restored.maybe(added))
    more = os.urandom(16 * 150_000)
    restored.add(more)
    assert restored.count == 300_000
    assert all(restored.maybe(more)) and all(restored.maybe(added))


@pytest.mark.parametrize("saved", [[], [(0, bytes(1000))], [(0, bytes(4))]])
def test_what_cannot_be_a_saved_filter_is_refused(saved: list[tuple[int, bytes]]) -> None:
    with pytest.raises(ValueError):
        KeyFilter.restored(saved)
