"""Dashboard sessions: signed, expiring, ended by logout, and a CSRF token bound to each."""

from __future__ import annotations

from engine.dashboard.session import LOGIN_FORM_TTL_S, Sessions


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_started_session_is_proved_by_its_cookie_until_it_expires() -> None:
    clock = Clock()
    sessions = Sessions("admin", ttl_s=60, clock=clock)
    session, cookie = sessions.start()
    assert sessions.check(cookie) == session
    clock.now += 59
    assert sessions.check(cookie) == session
    clock.now += 1
    assert sessions.check(cookie) is None


def test_an_edited_or_foreign_cookie_proves_nothing() -> None:
    sessions = Sessions("admin")
    _, cookie = sessions.start()
    session_id, expires, signature = cookie.split(".")
    later = f"{session_id}.{int(expires) + 3600}.{signature}"
    other_id = f"{'x' * len(session_id)}.{expires}.{signature}"
    for forged in (later, other_id, cookie + "x", "", "no-dots", "a.b.c.d", "ñ.1.ü"):
        assert sessions.check(forged) is None, forged
    assert sessions.check(None) is None
    # Another admin token signs with another key: rotating the token ends every session.
    assert Sessions("rotated").check(cookie) is None


def test_logout_ends_the_session_even_for_a_copy_of_its_cookie() -> None:
    sessions = Sessions("admin")
    session, cookie = sessions.start()
    other, other_cookie = sessions.start()
    sessions.end(session)
    assert sessions.check(cookie) is None
    assert sessions.check(other_cookie) == other


def test_a_process_that_never_issued_the_session_refuses_it() -> None:
    _, cookie = Sessions("admin").start()
    assert Sessions("admin").check(cookie) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    sessions = Sessions("admin")
    one, _ = sessions.start()
    two, _ = sessions.start()
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(two))
    assert not sessions.csrf_ok(one, None)
    assert not sessions.csrf_ok(one, "")
    assert not sessions.csrf_ok(one, "ünïcode")


def test_a_login_form_token_matches_its_own_cookie_for_a_quarter_of_an_hour() -> None:
    clock = Clock()
    sessions = Sessions("admin", clock=clock)
    cookie, token = sessions.login_form()
    other_cookie, other_token = sessions.login_form()
    assert sessions.login_form_ok(cookie, token)
    assert not sessions.login_form_ok(cookie, other_token)
    assert not sessions.login_form_ok(None, token)
    assert not sessions.login_form_ok(cookie, None)
    # A login form's cookie is not a session cookie, nor the other way round.
    assert sessions.check(cookie) is None
    _, session_cookie = sessions.start()
    assert not sessions.login_form_ok(session_cookie, token)
    clock.now += LOGIN_FORM_TTL_S
    assert not sessions.login_form_ok(other_cookie, other_token)
