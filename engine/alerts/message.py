"""Discord messages for alerts: escaped, mention-proof and within Discord's size limits.

Names, emails, product titles and event properties all come from a browser, so a visitor can put
anything in them. Each such value goes through `escape` before it reaches a message, and every
message carries `allowed_mentions: {"parse": []}`, so a visitor named `@everyone` pings nobody
even if an escape were missed. Limits are Discord's, documented under "Embed Limits"; a message
over them is rejected outright (400), which would lose the alert, so we truncate instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
EMBEDS_TOTAL_MAX = 6000
ELLIPSIS = "…"

# Characters Discord markdown gives a meaning to, plus `<` (mention and channel syntax) and `:`
# (emoji shortcodes and auto-linked URLs, so a visitor cannot make a clickable link).
_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()<:])")
_EVERYONE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi embeddings, overrides and isolates, and zero-width characters: invisible, yet they make
# one string read as another (`x\u202egnp.exe@evil.example` shows as `xelpmaxe.live@exe.png`).
# Each becomes a visible U+FFFD, as the dashboard shows them, so an alert cannot be misread.
_HIDDEN = re.compile(r"[\u200b\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
NO_MENTIONS: dict[str, list[str]] = {"parse": []}

COLORS = {"identified": 0x2ECC71, "returned": 0x3498DB, "event": 0xF1C40F, "test": 0x95A5A6}


def escape(value: object) -> str:
    """Make a browser-supplied value inert: one line, no markdown, no mentions, no links."""
    text = _HIDDEN.sub("\ufffd", _CONTROL.sub(" ", str(value))).strip()
    text = _MARKDOWN.sub(r"\\\1", text)
    # A zero-width space after `@` keeps `@everyone` and `@here` from reading as mentions; other
    # `@`s stay as typed, so an email copied from an alert still works.
    return _EVERYONE.sub("@\u200b", text)


def unescape(text: str) -> str:
    """`text` as Discord renders it, for places that show plain text (the read API, the CLI)."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u200b", "")


def one_line(text: str, limit: int) -> str:
    """Plain text for a terminal: one line, no control or disguising characters, cut to `limit`.

    Summaries stored before those characters were replaced still hold them, and a terminal
    obeys a right-to-left override or a C1 control sequence as readily as Discord would.
    """
    return truncate(_HIDDEN.sub("\ufffd", _CONTROL.sub(" ", text)).strip(), limit)


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never ending inside an escape."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    # An odd run of trailing backslashes would escape the ellipsis (or be half an escape pair).
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


@dataclass
class Message:
    """What an alert says, in trusted text: callers escape browser values before putting them in."""

    kind: str
    title: str
    description: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    footer: str = ""
    author: str = ""
    content: str = ""
    timestamp_iso: str | None = None

    def payload(self) -> dict[str, Any]:
        """The webhook body (Discord's field names, which `DiscordWebhook` accepts as keywords)."""
        embed: dict[str, Any] = {
            "title": truncate(self.title, TITLE_MAX),
            "color": COLORS.get(self.kind, COLORS["test"]),
        }
        if self.description:
            embed["description"] = truncate(self.description, DESCRIPTION_MAX)
        if self.fields:
            embed["fields"] = [
                {
                    "name": truncate(name, FIELD_NAME_MAX) or "\u200b",
                    "value": truncate(value, FIELD_VALUE_MAX) or "\u200b",
                    "inline": len(value) <= 40,
                }
                for name, value in self.fields[:FIELDS_MAX]
            ]
        if self.footer:
            embed["footer"] = {"text": truncate(self.footer, FOOTER_MAX)}
        if self.author:
            embed["author"] = {"name": truncate(self.author, AUTHOR_MAX)}
        if self.timestamp_iso:
            embed["timestamp"] = self.timestamp_iso
        _fit_total(embed)
        body: dict[str, Any] = {"embeds": [embed], "allowed_mentions": NO_MENTIONS}
        if self.content:
            body["content"] = truncate(self.content, CONTENT_MAX)
        return body


def embed_chars(embed: dict[str, Any]) -> int:
    """The characters Discord counts toward the 6,000 shared by a message's embeds."""
    count = len(embed.get("title", "")) + len(embed.get("description", ""))
    count += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    count += len(embed.get("footer", {}).get("text", ""))
    count += len(embed.get("author", {}).get("name", ""))
    return count


def _fit_total(embed: dict[str, Any]) -> None:
    # Fields are the detail, the description the summary: drop fields from the end first, then
    # shorten the description, so what remains is still the most useful part.
    fields: list[dict[str, Any]] = embed.get("fields", [])
    while fields and embed_chars(embed) > EMBEDS_TOTAL_MAX:
        fields.pop()
    if not fields:
        embed.pop("fields", None)
    excess = embed_chars(embed) - EMBEDS_TOTAL_MAX
    if excess > 0 and "description" in embed:
        description = embed["description"]
        embed["description"] = truncate(description, max(len(description) - excess, 1))
