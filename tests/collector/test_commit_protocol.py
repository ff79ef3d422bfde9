"""Frames between the collector and its commit process, cut into pieces the way pipes cut them."""

from __future__ import annotations

from bond.storage.eventlog import NewEvent, RejectedEvent
from collector.commit_protocol import (
    Ack,
    FrameReader,
    Group,
    ack_frame,
    decode_ack,
    decode_group,
    group_frame,
)

EVENT = NewEvent("web", "m-1", "track", None, "u-1", "Signed Up", 1, 2, "10.0.0.0", "UA", b"{}")
REFUSED = RejectedEvent("web", 2, "signature does not match", b'{"type":"identify"}', "m-1")


def test_rows_come_back_as_the_types_they_were_sent_as() -> None:
    (payload,) = FrameReader().feed(group_frame([EVENT], [REFUSED]))
    group = decode_group(payload)
    assert group == Group([EVENT], [REFUSED])
    assert type(group.events[0]) is NewEvent
    assert type(group.rejected[0]) is RejectedEvent
    untied = RejectedEvent("web", 2, "missing_id", b"{}")
    (payload,) = FrameReader().feed(group_frame([], [untied]))
    assert decode_group(payload).rejected == [untied]


def test_frames_split_anywhere_come_out_whole_and_in_order() -> None:
    acks = [Ack(1, 3, 2, 0, 0.004), Ack(2, 0, 0, 1, 0.001, "database is locked")]
    stream = group_frame([EVENT], []) + b"".join(map(ack_frame, acks))
    for cut in range(1, len(stream)):
        reader = FrameReader()
        payloads = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert len(payloads) == 3
        assert decode_group(payloads[0]).events == [EVENT]
        assert [decode_ack(p) for p in payloads[1:]] == acks


def test_a_partial_frame_waits_for_the_rest() -> None:
    reader = FrameReader()
    frame = group_frame([EVENT], [])
    assert reader.feed(frame[:-1]) == []
    assert len(reader.feed(frame[-1:])) == 1


def test_frames_read_into_one_reused_buffer_survive_the_next_read() -> None:
    # The commit process reads every chunk into the same buffer: what a frame needs of a chunk
    # must be copied out before the next read overwrites it.
    stream = group_frame([EVENT], []) + group_frame([], [REFUSED])
    cut = len(stream) // 2 + 3  # the second frame straddles the two reads
    buffer = bytearray(len(stream))
    reader, payloads = FrameReader(), []
    for chunk in (stream[:cut], stream[cut:]):
        buffer[: len(chunk)] = chunk
        payloads += reader.feed(memoryview(buffer)[: len(chunk)])
        buffer[:] = b"\xff" * len(buffer)  # the next read, or anything else
    assert [decode_group(p) for p in payloads] == [Group([EVENT], []), Group([], [REFUSED])]
