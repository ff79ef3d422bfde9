"""A failure repeated until its cause goes: a line when it starts, reminders, a line at its end."""

from __future__ import annotations

from bond.outage import Outage
from conftest import captured_logs


def test_an_outage_is_one_line_however_many_failures_and_one_more_when_it_ends() -> None:
    outage = Outage("disk", remind_s=3600)
    with captured_logs() as logs:
        outage.ended()  # nothing was failing: nothing to say
        for _ in range(500):
            outage.failed("database or disk is full", offset=3)
        assert outage.ongoing
        outage.ended(offset=9)
        outage.failed("disk I/O error")  # a new outage
    assert [(line["reason"], line.get("offset")) for line in logs.records("disk_failed")] == [
        ("database or disk is full", 3),
        ("disk I/O error", None),
    ]
    [recovered] = logs.records("disk_recovered")
    assert (recovered["failures"], recovered["offset"]) == (500, 9)
    assert not logs.records("disk_still_failing")


def test_a_long_outage_is_recalled_with_the_failures_so_far() -> None:
    outage = Outage("disk", remind_s=0)  # a reminder every time it is due
    with captured_logs() as logs:
        for _ in range(3):
            outage.failed("database or disk is full")
    assert len(logs.records("disk_failed")) == 1
    assert [line["failures"] for line in logs.records("disk_still_failing")] == [2, 3]
