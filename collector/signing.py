"""Signed identities: which identity claims in an event the site's own server vouched for.

A visitor's browser can claim to be anyone: `identify(null, {email: "ceo@shop.example"})` costs
nothing to type into a console. A source with a `signing_secret` lets the site's server vouch for
one identifier per event: `HMAC-SHA256(secret, identifier)` in hex, sent as
`context.bond.signature`. The identifier signed is the userId when the event has one, else the
email (trimmed, lowercased). A signature vouches for exactly the identifier whose HMAC it is.

The identity claims of an event are its `userId` (any type), an identify's `traits.email`, and an
alias's link from `previousId` to `userId`. In a source that requires signing, a claim the
signature does not vouch for is stripped before the event is stored, so it can neither stitch
nor alert: the event is kept as an anonymous event and the refusal is reported. An alias is
nothing but a claim, so a refused alias is rejected whole; so is an event left with no id.

`context.bond` is the collector's namespace: whatever a client sent there is removed, and the
collector writes `context.bond.verified` (the kind of identifier vouched for) itself, so the
engine can trust it. The signature is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Any, Literal, NamedTuple

import orjson

from bond.config import Config, Source
from bond.errors import EventInvalid
from bond.ids import clean_id, normalize_email
from bond.storage.eventlog import RejectedEvent

MARKER = "bond"
Vouched = Literal["user_id", "email"]
# A SHA-256 HMAC in hex.
_SIGNATURE_LENGTH = 64
# A signed-in visitor's SDK signs each event with the same signature; checking a pair once per
# this many distinct pairs keeps the per-event cost at a set lookup.
_KNOWN_PAIRS = 10_000

_HOW = (
    "send context.bond.signature = hex HMAC-SHA256 of the userId (or of the email, trimmed and "
    "lowercased, when there is no userId) made with the source's signing secret"
)
_ANONYMOUS = "its userId and traits.email were dropped and it was kept as an anonymous event"


class Refusal(NamedTuple):
    """An identity claim stripped from an event that was kept."""

    code: str  # a stable tag for metrics
    reason: str  # for the developer reading the response or the rejected store
    body: bytes  # the event as sent, minus its signature: what the rejected store keeps


class Verdict(NamedTuple):
    verified: Vouched | None
    refusal: Refusal | None


class Signer:
    """One source's rule for identity claims."""

    def __init__(self, source: Source) -> None:
        secret = source.signing_secret
        # Keyed once: copying a keyed HMAC costs half of keying a new one.
        self.keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256) if secret else None
        self.required = source.require_signed_identify
        self.known: set[tuple[str, str, str]] = set()

    def vet(self, message: object, path_type: str | None) -> Verdict | None:
        """Check `message`'s identity claims, editing it in place; None when it makes none.

        Raises EventInvalid when the claims it refuses are all the event was (an alias), or all
        that identified it (no anonymousId); the message then still holds its claims, not its
        signature, for the rejected store.
        """
        if not isinstance(message, dict):
            return None
        context = message.get("context")
        signature = None
        if context.__class__ is dict and MARKER in context:
            sent = context.pop(MARKER)
            signature = sent.get("signature") if sent.__class__ is dict else None
        if self.keyed is None:
            return None
        kind = message.get("type", path_type)
        if message.get("userId") is None and kind != "identify":
            return None
        user_id = clean_id(message.get("userId"))
        traits = message.get("traits") if kind == "identify" else None
        email = normalize_email(traits.get("email")) if traits.__class__ is dict else None
        if user_id is None and email is None:
            return None
        vouched = self._vouched(signature, user_id, email)
        if vouched is not None:
            marker = {"verified": vouched}
            if context is None:
                message["context"] = {MARKER: marker}
            elif context.__class__ is dict:
                context[MARKER] = marker
        if not self.required:
            return Verdict(vouched, None)
        return self._enforce(message, kind, vouched, signature, user_id, email)

    def _vouched(self, signature: object, user_id: str | None, email: str | None) -> Vouched | None:
        if not isinstance(signature, str) or len(signature) != _SIGNATURE_LENGTH:
            return None
        claims: tuple[tuple[Vouched, str | None], ...] = (("user_id", user_id), ("email", email))
        for kind, value in claims:
            if value is not None and (kind, value, signature) in self.known:
                return kind
        try:
            given = bytes.fromhex(signature)
        except ValueError:
            return None
        assert self.keyed is not None
        for kind, value in claims:
            if value is None:
                continue
            expected = self.keyed.copy()
            expected.update(value.encode())
            if hmac.compare_digest(expected.digest(), given):
                if len(self.known) >= _KNOWN_PAIRS:
                    self.known.clear()
                self.known.add((kind, value, signature))
                return kind
        return None

    def _enforce(
        self,
        message: dict[str, Any],
        kind: object,
        vouched: Vouched | None,
        signature: object,
        user_id: str | None,
        email: str | None,
    ) -> Verdict:
        anonymous_id = clean_id(message.get("anonymousId"))
        if kind == "alias":
            if vouched is None:
                code, why = _unvouched(signature)
                raise EventInvalid(f"alias refused: {why}", code=code)
            if clean_id(message.get("previousId")) != anonymous_id:
                raise EventInvalid(
                    "alias refused: in a source that requires signed identities an alias may "
                    "only link the browser's own id (previousId equal to anonymousId) to the "
                    "signed userId; one signature cannot vouch for a second identifier",
                    code="identity_alias_previous_id",
                )
            return Verdict(vouched, None)
        if vouched is None:
            code, why = _unvouched(signature)
            dropped = _ANONYMOUS
        elif vouched == "user_id" and email is not None:
            code, why = "identity_not_covered", "the signature vouches for the userId only"
            dropped = (
                "traits.email was dropped (to link an email, sign an identify that carries no "
                "userId over the email)"
            )
        elif vouched == "email" and user_id is not None:
            code, why = "identity_not_covered", "the signature vouches for the email only"
            dropped = "the userId was dropped"
        else:
            return Verdict(vouched, None)
        if anonymous_id is None and vouched != "user_id":
            raise EventInvalid(
                f"{why}; without its userId the event has no anonymousId to be kept by", code=code
            )
        body = orjson.dumps(message)
        if vouched != "user_id":
            message.pop("userId", None)
        if vouched != "email" and email is not None:
            del message["traits"]["email"]
        return Verdict(vouched, Refusal(code, f"{why}; {dropped}", body))


def signers(config: Config) -> dict[str, Signer]:
    """Each source's signer, by write key (unique per source)."""
    return {source.write_key: Signer(source) for source in config.sources}


def _unvouched(signature: object) -> tuple[str, str]:
    if signature is None:
        return (
            "identity_unsigned",
            f"this source requires signed identities and the event carries no signature ({_HOW})",
        )
    return (
        "identity_bad_signature",
        f"the signature matches neither the userId nor the email ({_HOW})",
    )


class IdentityReport:
    """One request's identity outcomes, for its response, the rejected store and the metrics."""

    __slots__ = ("codes", "received_at", "refused", "rows", "source", "verified")

    def __init__(self, source: str, received_at: int) -> None:
        self.source = source
        self.received_at = received_at
        self.verified = 0
        self.refused: list[dict[str, Any]] = []  # the response's identity_rejected
        self.rows: list[RejectedEvent] = []
        self.codes: Counter[str] = Counter()

    def add(self, index: int, verdict: Verdict, message_id: str) -> None:
        """The verdict on the event at `index`, stored under `message_id` either way."""
        self.verified += verdict.verified is not None
        refusal = verdict.refusal
        if refusal is not None:
            self.refused.append({"index": index, "reason": refusal.reason})
            self.rows.append(
                RejectedEvent(
                    self.source, self.received_at, refusal.reason, refusal.body, message_id
                )
            )
            self.codes[refusal.code] += 1
