"""Dashboard sessions: a signed, expiring cookie for whoever typed the admin token.

The cookie carries a random session id and its expiry, signed (HMAC-SHA256) with a key derived
from the admin token: a forged or edited cookie is refused before any lookup, and changing the
admin token ends every session. The id must also be one this process issued and has not seen
logged out, so logout works even for a copied cookie; the price is that a restart of the read
API asks everyone to log in again.

CSRF: a POST must carry a token derived from the session (which another site's page cannot read),
and the login form, which comes before any session, a token derived from a short-lived signed
cookie set with the form (double submit). The cookies are SameSite=Strict besides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import NamedTuple

SESSION_TTL_S = 8 * 3600
LOGIN_FORM_TTL_S = 15 * 60
# Only admins can start sessions; the cap bounds memory should a script log in in a loop.
MAX_SESSIONS = 1000


class Session(NamedTuple):
    id: str
    expires_at: int  # epoch seconds


class Sessions:
    def __init__(
        self,
        admin_token: str,
        *,
        ttl_s: int = SESSION_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = hmac.new(admin_token.encode(), b"bond dashboard v1", hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self._clock = clock
        self._live: dict[str, int] = {}

    def start(self) -> tuple[Session, str]:
        """A new session and the cookie value that proves it."""
        now = int(self._clock())
        self._live = {sid: exp for sid, exp in self._live.items() if exp > now}
        if len(self._live) >= MAX_SESSIONS:
            del self._live[min(self._live, key=self._live.__getitem__)]
        session = Session(secrets.token_urlsafe(24), now + self.ttl_s)
        self._live[session.id] = session.expires_at
        return session, self._sign(f"{session.id}.{session.expires_at}")

    def check(self, cookie: str | None) -> Session | None:
        """The session a cookie proves, or None (missing, forged, expired or logged out)."""
        payload = self._verify(cookie)
        if payload is None:
            return None
        session_id, _, expires = payload.partition(".")
        session = Session(session_id, int(expires))
        if session.expires_at <= self._clock() or self._live.get(session.id) != session.expires_at:
            return None
        return session

    def end(self, session: Session) -> None:
        self._live.pop(session.id, None)

    def csrf_token(self, session: Session) -> str:
        return self._mac(f"csrf.{session.id}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and _same(token, self.csrf_token(session))

    def login_form(self) -> tuple[str, str]:
        """(cookie value, form token) for one login form, valid for a quarter of an hour."""
        nonce = secrets.token_urlsafe(16)
        expires = int(self._clock()) + LOGIN_FORM_TTL_S
        return self._sign(f"{nonce}.{expires}"), self._mac(f"login.{nonce}")

    def login_form_ok(self, cookie: str | None, token: str | None) -> bool:
        payload = self._verify(cookie)
        if payload is None or token is None:
            return False
        nonce, _, expires = payload.partition(".")
        fresh = int(expires) > self._clock()
        return fresh and _same(token, self._mac(f"login.{nonce}"))

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _sign(self, payload: str) -> str:
        return f"{payload}.{self._mac(payload)}"

    def _verify(self, cookie: str | None) -> str | None:
        """The payload of a cookie we signed, shaped `<token>.<epoch seconds>`, else None."""
        if not cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not _same(signature, self._mac(payload)):
            return None
        _, _, expires = payload.partition(".")
        return payload if expires.isdigit() else None


def _same(given: str, expected: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII str, and a cookie or form field may hold anything.
    return hmac.compare_digest(given.encode(), expected.encode())
