"""Logging in with the admin token, and out.

The form posts the token once; from then on the browser holds only the session cookie (HttpOnly,
so page scripts cannot read it; SameSite=Strict, so no other site's page or link sends it). A
write key is refused with its own reason: it ships in every page with the snippet, so it must
never open the dashboard.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bond.config import Config
from engine.dashboard.session import LOGIN_FORM_TTL_S, Session, Sessions

SESSION_COOKIE = "bond_session"
LOGIN_COOKIE = "bond_login"
COOKIE_PATH = "/dashboard"
MAX_FORM_BYTES = 4096
# Guessing the token: after this many wrong ones in a minute from one client, the form rests
# for that minute, for that client only: one shared count would let anyone lock the admin out
# with ten requests a minute.
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
# Clients followed at once; past this the one whose last failure is oldest is forgotten.
MAX_CLIENTS = 4096

LOGIN_PAGE = Path(__file__).resolve().parent / "static" / "login.html"


class Throttle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (0: now)."""
        now = self.clock()
        failures = self.failures.get(client, deque())
        while failures and failures[0] <= now - FAILURE_WINDOW_S:
            failures.popleft()
        if len(failures) < MAX_FAILURES:
            return 0
        return max(1, int(failures[0] + FAILURE_WINDOW_S - now) + 1)

    def failed(self, client: str) -> None:
        if client not in self.failures and len(self.failures) >= MAX_CLIENTS:
            del self.failures[min(self.failures, key=lambda c: self.failures[c][-1])]
        self.failures.setdefault(client, deque(maxlen=MAX_FAILURES)).append(self.clock())


def client_of(request: Request) -> str:
    """Who is guessing: the peer's address, an IPv6 one by its /64 (one host holds them all)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Login:
    def __init__(self, config: Config, sessions: Sessions | None) -> None:
        self.config = config
        self.sessions = sessions
        self.throttle = Throttle()
        self.template = LOGIN_PAGE.read_text()

    def session(self, request: Request) -> Session | None:
        if self.sessions is None:
            return None
        return self.sessions.check(request.cookies.get(SESSION_COOKIE))

    async def form(self, request: Request) -> Response:
        if self.session(request) is not None:
            return RedirectResponse(f"{COOKIE_PATH}/", 303)
        return self._page(request, "", 200)

    async def submit(self, request: Request) -> Response:
        sessions = self.sessions
        if sessions is None:
            return self._page(request, "", 403)
        if not same_origin(request):
            return self._page(request, "That form came from another site.", 403)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self._page(request, "That form is too large.", 413)
        fields = parse_qs(body.decode("utf-8", "replace"))
        token = fields.get("token", [""])[0].strip()
        form_token = fields.get("form", [None])[0]
        if not sessions.login_form_ok(request.cookies.get(LOGIN_COOKIE), form_token):
            return self._page(request, "The login form expired. Please try again.", 403)
        client = client_of(request)
        wait = self.throttle.retry_after(client)
        if wait:
            response = self._page(
                request, f"Too many wrong tokens. Try again in {wait} seconds.", 429
            )
            response.headers["Retry-After"] = str(wait)
            return response
        admin = self.config.admin_token or ""
        if not hmac.compare_digest(token.encode(), admin.encode()):
            self.throttle.failed(client)
            if self.config.source_for_key(token) is not None:
                reason = "That is a write key: it only sends events. Use the admin token."
                return self._page(request, reason, 403)
            return self._page(request, "That is not the admin token.", 401)
        _, cookie = sessions.start()
        home = RedirectResponse(f"{COOKIE_PATH}/", 303)
        set_cookie(request, home, SESSION_COOKIE, cookie, sessions.ttl_s)
        home.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return home

    async def logout(self, request: Request) -> Response:
        session = self.session(request)
        response = RedirectResponse(f"{COOKIE_PATH}/login", 303)
        if session is None:
            return response  # already out; nothing to protect
        assert self.sessions is not None
        body = await request.body()
        token = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace")).get("csrf", [None])[0]
        if not same_origin(request) or not self.sessions.csrf_ok(session, token):
            return HTMLResponse("Logging out needs the dashboard's own form.", 403)
        self.sessions.end(session)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    def _page(self, request: Request, message: str, status: int) -> HTMLResponse:
        if self.sessions is None:
            message = "The dashboard is off: set BOND_ADMIN_TOKEN (or admin_token in bond.toml)."
            cookie, form_token = "", ""
        else:
            cookie, form_token = self.sessions.login_form()
        page = self.template.replace("{{form}}", html.escape(form_token)).replace(
            "{{message}}", html.escape(message)
        )
        response = HTMLResponse(page, status)
        if cookie:
            set_cookie(request, response, LOGIN_COOKIE, cookie, LOGIN_FORM_TTL_S)
        return response


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    # Secure whenever the dashboard is reached over https (it may be served on plain loopback).
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def same_origin(request: Request) -> bool:
    """A POST's Origin (browsers send it on every POST) must be this server; none is allowed
    only for clients that are not browsers, which cannot carry the session cookie cross-site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme == request.url.scheme and parts.netloc == request.headers.get("host")
