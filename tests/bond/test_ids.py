from __future__ import annotations

import pytest

from bond.ids import clean_id, normalize_email


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "  ",
        "null",
        "NULL",
        "undefined",
        "0",
        0,
        "anonymous",
        "[object Object]",
        "none",
        "nil",
        "NaN",
        "guest",
        True,
        False,
        {},
        [],
        3.5,
        "x" * 300,
    ],
)
def test_placeholders_are_not_ids(value: object) -> None:
    assert clean_id(value) is None


@pytest.mark.parametrize(
    ("value", "expected"), [(" u-1 ", "u-1"), (42, "42"), ("anon-0", "anon-0")]
)
def test_real_ids_are_kept_trimmed(value: object, expected: str) -> None:
    assert clean_id(value) == expected


def test_emails_are_trimmed_and_lowercased() -> None:
    assert normalize_email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"


@pytest.mark.parametrize(
    "value",
    [
        "not-an-email",
        "a@b",
        "@example.com",
        "a b@example.com",
        "null",
        "a\tb@example.com",
        "x\u202egnp.exe@evil.example",  # a right-to-left override: reads as another address
        "ada\u200b@example.com",  # a zero-width space: a second identity for one address
        "ada@example.com\u2028x",
    ],
)
def test_implausible_emails_are_refused(value: str) -> None:
    assert normalize_email(value) is None
