"""Logging in to the dashboard with the admin token, never a write key; CSRF; logout."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ADMIN_TOKEN, WRITE_KEY
from engine.dashboard.login import MAX_FAILURES
from tests.engine.dashboard.dashboard_support import (
    BASE,
    Client,
    HookedEngine,
    csrf,
    dashboard,
    log_in,
)


@pytest.fixture
def hooked(data_dir: Path) -> Iterator[HookedEngine]:
    running = HookedEngine(data_dir)
    running.page("laptop", 1_000, "/")
    running.run()
    yield running
    running.close()


@pytest.fixture
def client(hooked: HookedEngine) -> Iterator[Client]:
    with dashboard(hooked.config) as running:
        yield running


def test_the_admin_token_opens_a_session_in_an_httponly_strict_cookie(client: Client) -> None:
    assert client.get("/dashboard/api/live").status_code == 401
    page = client.get("/dashboard/", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/dashboard/login")

    response = log_in(client)

    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/")
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("bond_session=")
    )
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/dashboard"} <= attributes
    assert client.get("/dashboard/api/live").status_code == 200
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert 'id="main"' in page.text


def test_a_write_key_cannot_log_in_and_is_told_why(client: Client) -> None:
    response = log_in(client, WRITE_KEY)
    assert response.status_code == 403
    assert "write key" in response.text
    assert "bond_session" not in client.cookies
    assert client.get("/dashboard/api/live").status_code == 401


def test_a_wrong_token_is_refused_and_guessing_is_slowed(client: Client) -> None:
    for _ in range(MAX_FAILURES):
        response = log_in(client, "guess")
        assert response.status_code == 401
        assert "not the admin token" in response.text
    throttled = log_in(client, "guess")
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    # Even the right token waits: the form is resting, not judging.
    assert log_in(client).status_code == 429


def test_the_read_apis_bearer_token_is_not_a_dashboard_session(client: Client) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = client.get("/dashboard/api/live", headers=headers)
    assert response.status_code == 401
    assert "log in" in response.json()["reason"]


def test_a_login_post_from_another_site_or_without_its_form_is_refused(
    client: Client,
) -> None:
    form = client.get("/dashboard/login").text
    form_token = form.split('name="form" value="', 1)[1].split('"', 1)[0]
    fields = {"form": form_token, "token": ADMIN_TOKEN}
    elsewhere = client.post(
        "/dashboard/login",
        data=fields,
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403
    assert "another site" in elsewhere.text
    forged = client.post(
        "/dashboard/login",
        data={**fields, "form": "forged"},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "expired" in forged.text
    assert client.get("/dashboard/api/live").status_code == 401


def test_logout_needs_the_csrf_token_and_then_ends_the_session(client: Client) -> None:
    log_in(client)
    cookie = client.cookies["bond_session"]
    replay = {"Cookie": f"bond_session={cookie}"}
    assert client.get("/dashboard/api/live", headers=replay).status_code == 200
    refused = client.post("/dashboard/logout", data={"csrf": "guess"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/dashboard/api/live").status_code == 200
    token = csrf(client)
    elsewhere = client.post(
        "/dashboard/logout",
        data={"csrf": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403

    out = client.post(
        "/dashboard/logout", data={"csrf": token}, headers={"Origin": BASE}, follow_redirects=False
    )

    assert (out.status_code, out.headers["location"]) == (303, "/dashboard/login")
    assert client.get("/dashboard/api/live").status_code == 401
    # A copy of the old cookie is worth nothing either.
    assert client.get("/dashboard/api/live", headers=replay).status_code == 401


def test_without_an_admin_token_the_dashboard_is_off(hooked: HookedEngine) -> None:
    config = replace(hooked.config, admin_token=None)
    with dashboard(config) as client:
        page = client.get("/dashboard/login")
        assert page.status_code == 200
        assert "BOND_ADMIN_TOKEN" in page.text
        assert "bond_login" not in page.headers.get("set-cookie", "")
        assert log_in(client, "").status_code == 403
        assert client.get("/dashboard/api/live").status_code == 401


def test_a_guesser_elsewhere_does_not_lock_the_admin_out(
    client: Client, hooked: HookedEngine
) -> None:
    guesser = Client(hooked.config, app=client.app, peer=("203.0.113.9", 4000))
    v6_guesser = Client(hooked.config, app=client.app, peer=("2001:db8::1", 4000))
    v6_neighbour = Client(hooked.config, app=client.app, peer=("2001:db8::2", 4000))
    try:
        for _ in range(MAX_FAILURES):
            assert log_in(guesser, "guess").status_code == 401
            assert log_in(v6_guesser, "guess").status_code == 401
        assert log_in(guesser, "guess").status_code == 429
        # One host holds a whole IPv6 /64: its other addresses rest too.
        assert log_in(v6_neighbour, "guess").status_code == 429
        assert log_in(client).status_code == 303
    finally:
        for other in (guesser, v6_guesser, v6_neighbour):
            other.close()
