"""What counts as an identifier: placeholder filtering and email normalisation.

SDKs and site code leak serialised nothings into id fields (`"undefined"`, `"[object Object]"`,
`"0"`). Taken as ids, each would merge every visitor who sent it into one giant person.
"""

from __future__ import annotations

PLACEHOLDERS = frozenset(
    {
        "",
        "null",
        "undefined",
        "none",
        "nil",
        "nan",
        "0",
        "-1",
        "anonymous",
        "anon",
        "guest",
        "unknown",
        "n/a",
        "na",
        "[object object]",
        "{}",
        "[]",
        "false",
        "true",
        "00000000-0000-0000-0000-000000000000",
    }
)

MAX_ID_LENGTH = 256


def clean_id(value: object) -> str | None:
    """The identifier in `value`, or None when it is missing, a placeholder or not an id at all."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower() in PLACEHOLDERS or len(text) > MAX_ID_LENGTH:
        return None
    return text


def normalize_email(value: object) -> str | None:
    """A comparable email (trimmed, lowercased) or None when `value` is not a plausible email.

    No address holds a space, a control or an invisible formatting character. Taken as an
    identity, one with a right-to-left override (`x\u202egnp.exe@evil.example`) would be shown
    to sales as another address (`xelpmaxe.live@exe.png`), and one with a zero-width space would
    be a second identity for the same address.
    """
    text = clean_id(value)
    if text is None:
        return None
    text = text.lower()
    local, at, domain = text.rpartition("@")
    # isprintable() is False for Unicode's "Other" and "Separator" categories, but the space.
    if not at or not local or "." not in domain or " " in text or not text.isprintable():
        return None
    return text
