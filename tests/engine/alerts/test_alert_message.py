"""Discord payloads: browser values made inert, and every size limit kept."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from engine.alerts.message import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    EMBEDS_TOTAL_MAX,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    TITLE_MAX,
    Message,
    embed_chars,
    escape,
    truncate,
)


def test_mentions_are_defused_and_disallowed() -> None:
    name = escape("@everyone @here <@123> <@&456>")
    assert not re.search(r"@(everyone|here)|(?<!\\)<@&?\d", name)
    assert Message("identified", f"{name} identified").payload()["allowed_mentions"] == {
        "parse": []
    }


def test_markdown_links_and_line_breaks_from_a_browser_are_inert() -> None:
    assert escape("**bold** _it_ `code` ~~x~~ ||spoiler||") == (
        r"\*\*bold\*\* \_it\_ \`code\` \~\~x\~\~ \|\|spoiler\|\|"
    )
    assert escape("[click](https://evil.example)") == r"\[click\]\(https\://evil.example\)"
    assert escape("Ann\n# Fake heading\r\n> quote") == r"Ann \# Fake heading \> quote"
    assert escape("back\\slash") == "back\\\\slash"


def test_truncation_ends_with_an_ellipsis_and_never_inside_an_escape() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("abcdefghij", 5) == "abcd…"
    cut = truncate(escape("*" * 100), 6)
    assert cut == r"\*\*…"
    assert len(cut) <= 6


def test_every_limit_holds_for_an_oversized_message() -> None:
    message = Message(
        "event",
        title="t" * 1000,
        description="d" * 10_000,
        fields=[("n" * 1000, "v" * 5000) for _ in range(40)],
        footer="f" * 5000,
        author="a" * 1000,
        content="c" * 5000,
    )
    body = message.payload()
    [embed] = body["embeds"]
    assert len(body["content"]) == CONTENT_MAX and body["content"].endswith("…")
    assert len(embed["title"]) == TITLE_MAX
    assert len(embed.get("description", "")) <= DESCRIPTION_MAX
    assert len(embed.get("fields", [])) <= FIELDS_MAX
    assert embed_chars(embed) <= EMBEDS_TOTAL_MAX
    assert embed["description"].endswith("…")


@given(
    title=st.text(max_size=400),
    description=st.text(max_size=6000),
    fields=st.lists(st.tuples(st.text(max_size=300), st.text(max_size=1500)), max_size=30),
)
def test_any_message_fits_discords_limits(
    title: str, description: str, fields: list[tuple[str, str]]
) -> None:
    [embed] = Message("event", escape(title), escape(description), fields).payload()["embeds"]
    assert len(embed["title"]) <= TITLE_MAX
    assert len(embed.get("description", "")) <= DESCRIPTION_MAX
    assert len(embed.get("fields", [])) <= FIELDS_MAX
    for field in embed.get("fields", []):
        assert 0 < len(field["name"]) <= FIELD_NAME_MAX
        assert 0 < len(field["value"]) <= FIELD_VALUE_MAX
    assert embed_chars(embed) <= EMBEDS_TOTAL_MAX


def test_bidi_overrides_invisible_and_c1_characters_cannot_disguise_a_value() -> None:
    # Rendered, the first reads "xelpmaxe.live@exe.png"; U+009B is a terminal's CSI.
    assert escape("x\u202egnp.exe@evil.example") == "x\ufffdgnp.exe@evil.example"
    assert escape("Ann\u200b\u2066Lee\ufeff\u2069") == "Ann\ufffd\ufffdLee\ufffd\ufffd"
    assert escape("a\x9b31mb") == "a 31mb"
    # The zero-width space that defuses @everyone is still ours alone.
    assert escape("@\u200beveryone") == "@\ufffdeveryone"
