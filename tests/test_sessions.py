"""What a session costs the server: nothing for an anonymous visitor, a bounded number per user."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from tests.support.client import Auth, form_token

SESSION_COOKIE = "coffer_session"
SESSION_PREFIX = "coffer:session:"
ANONYMOUS_PATHS = ("/login", "/register", "/api/auth/csrf")


def session_keys(redis: Redis) -> set[bytes]:
    """The sessions stored in the suite's Redis."""
    return set(redis.scan_iter(SESSION_PREFIX + "*"))


def cookie_value(client: FlaskClient) -> str | None:
    """The client's session cookie, if it holds one."""
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie is not None else None


def device(app: Flask, number: int) -> FlaskClient:
    """A client of its own address, as another laptop or phone would be (and rate-limited
    as one)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"192.0.2.{number}"
    return client


def api_login(client: FlaskClient, email: str = "admin@acme.test") -> Any:
    """POST /api/auth/login with the right password."""
    return client.post("/api/auth/login", json={"email": email, "password": Auth.password})


def signed_in(client: FlaskClient) -> bool:
    """Whether the client's cookie is a live session."""
    return client.get("/api/auth/me").status_code == 200


def test_a_thousand_anonymous_visits_store_nothing(app: Flask, redis: Redis) -> None:
    """Sign-in and sign-up pages and the CSRF token, each asked for by hundreds of
    visitors: not one session key, not one key of any kind, is added to Redis."""
    before_keys, before_size = session_keys(redis), redis.dbsize()
    for n in range(1000):
        visitor = app.test_client()
        path = ANONYMOUS_PATHS[n % len(ANONYMOUS_PATHS)]
        with visitor.get(path) as response:
            assert response.status_code == 200
        # Each still gets what it came for: a token bound to a cookie of its own.
        assert cookie_value(visitor)
    assert session_keys(redis) == before_keys
    assert redis.dbsize() == before_size


def test_a_returning_anonymous_visitor_stores_nothing_either(app: Flask, redis: Redis) -> None:
    """One visitor coming back with its cookie keeps the same CSRF token, stored nowhere."""
    visitor = app.test_client()
    first = form_token(visitor, "/login")
    for path in ANONYMOUS_PATHS * 5:
        assert visitor.get(path).status_code == 200
    assert visitor.get("/api/auth/csrf").get_json()["csrf_token"]
    assert redis.dbsize() == 0
    # The page's token still matches the cookie: the sign-in form goes through.
    Auth(app, app.test_client()).register()
    response = visitor.post(
        "/login",
        data={"email": "admin@acme.test", "password": Auth.password, "csrf_token": first},
    )
    assert response.status_code == 302
    assert signed_in(visitor)


def test_the_anonymous_cookie_is_httponly_lax_and_ends_with_the_browser(app: Flask) -> None:
    """The visitor's cookie cannot be read by scripts, is not sent by other sites' posts,
    and is not kept on disk for days."""
    with app.test_client().get("/login") as response:
        headers = [
            h for h in response.headers.getlist("Set-Cookie") if h.startswith("coffer_session=")
        ]
    assert len(headers) == 1
    flags = {part.strip().lower().split("=")[0] for part in headers[0].split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=lax" in {part.strip().lower() for part in headers[0].split(";")[1:]}
    assert "expires" not in flags and "max-age" not in flags


def test_an_anonymous_visitor_signs_in_through_the_page(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    """The sign-in form's token is checked against the signed cookie, and signing in
    stores exactly one session: the one the cookie now names."""
    auth.register()
    auth.logout()
    assert session_keys(redis) == set()
    visitor = app.test_client()
    token = form_token(visitor, "/login")
    anonymous = cookie_value(visitor)
    assert session_keys(redis) == set()

    response = visitor.post(
        "/login",
        data={"email": "admin@acme.test", "password": Auth.password, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert visitor.get("/").status_code == 200
    authenticated = cookie_value(visitor)
    assert authenticated and authenticated != anonymous
    assert session_keys(redis) == {(SESSION_PREFIX + authenticated).encode()}
    # The pre-login cookie is no session at all.
    planted = app.test_client()
    planted.set_cookie(SESSION_COOKIE, anonymous or "")
    assert not signed_in(planted)


def test_the_token_of_get_csrf_signs_in_through_the_page(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    """A script that fetched /api/auth/csrf may send it as X-CSRF-Token with the form."""
    auth.register()
    auth.logout()
    visitor = app.test_client()
    token = visitor.get("/api/auth/csrf").get_json()["csrf_token"]
    assert session_keys(redis) == set()
    response = visitor.post(
        "/login",
        data={"email": "admin@acme.test", "password": Auth.password},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 302
    assert signed_in(visitor)
    assert len(session_keys(redis)) == 1


def test_an_anonymous_visitor_logs_in_through_the_api_and_writes_with_its_token(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    """Login from a client that holds an anonymous cookie: a session in Redis, and the
    token login answered (or GET /api/auth/csrf then) works; the anonymous one does not."""
    auth.register()
    auth.logout()
    visitor = app.test_client()
    anonymous_token = visitor.get("/api/auth/csrf").get_json()["csrf_token"]
    assert session_keys(redis) == set()

    answered = api_login(visitor)
    assert answered.status_code == 200
    assert len(session_keys(redis)) == 1
    stale = visitor.post("/api/org/invites", headers={"X-CSRF-Token": anonymous_token})
    assert stale.status_code == 400 and stale.get_json()["code"] == "csrf_failed"
    login_token = answered.get_json()["csrf_token"]
    assert (
        visitor.post("/api/org/invites", headers={"X-CSRF-Token": login_token}).status_code == 201
    )
    fetched = visitor.get("/api/auth/csrf").get_json()["csrf_token"]
    assert visitor.post("/api/org/invites", headers={"X-CSRF-Token": fetched}).status_code == 201

    # Logging out destroys the stored session and leaves the client anonymous again.
    assert visitor.post("/api/auth/logout", headers={"X-CSRF-Token": fetched}).status_code == 200
    assert session_keys(redis) == set()
    assert not signed_in(visitor)
    assert visitor.get("/login").status_code == 200
    assert session_keys(redis) == set()


def test_a_forged_or_missing_csrf_token_is_still_refused(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    """Without its own page's token, or with a cookie the visitor edited, the sign-in form
    signs no one in; cookie writes of a signed-in user still need their token."""
    auth.register()
    auth.logout()
    credentials = {"email": "admin@acme.test", "password": Auth.password}
    visitor = app.test_client()
    form_token(visitor, "/login")
    other_visitor_token = form_token(app.test_client(), "/login")
    for data in (credentials, {**credentials, "csrf_token": other_visitor_token}):
        refused = visitor.post("/login", data=data)
        assert refused.status_code == 400
        assert "the form expired" in refused.get_data(as_text=True)
        assert not signed_in(visitor)

    # A cookie whose content was changed, even to another visitor's, is no cookie at all.
    own = form_token(visitor, "/login")
    cookie = cookie_value(visitor) or ""
    signature = cookie.partition(".")[2]
    other = app.test_client()
    form_token(other, "/login")
    other_payload = (cookie_value(other) or "").partition(".")[0]
    visitor.set_cookie(SESSION_COOKIE, f"{other_payload}.{signature}")
    refused = visitor.post("/login", data={**credentials, "csrf_token": own})
    assert refused.status_code == 400
    assert not signed_in(visitor)
    assert session_keys(redis) == set()

    # Signed in, a cookie write without its token, or with a forged one, is 400 csrf_failed.
    assert auth.login().status_code == 200
    for headers in ({}, {"X-CSRF-Token": other_visitor_token}, {"X-CSRF-Token": "forged"}):
        response = auth.client.post("/api/org/invites", headers=headers)
        assert response.status_code == 400
        assert response.get_json()["code"] == "csrf_failed"


@pytest.mark.parametrize("app_overrides", [{"SESSION_MAX_PER_USER": 3}])
def test_past_the_per_user_cap_the_oldest_session_ends(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    """Logging in once more than SESSION_MAX_PER_USER ends the oldest session; a session
    logged out no longer counts."""
    auth.register()
    auth.logout()
    devices = [device(app, n) for n in range(1, 5)]
    for client in devices:
        assert api_login(client).status_code == 200
    assert not signed_in(devices[0])
    assert all(signed_in(client) for client in devices[1:])
    assert len(session_keys(redis)) == 3

    # A logged-out session frees its place: the next login ends no one's session.
    token = devices[3].get("/api/auth/csrf").get_json()["csrf_token"]
    assert devices[3].post("/api/auth/logout", headers={"X-CSRF-Token": token}).status_code == 200
    fifth = device(app, 5)
    assert api_login(fifth).status_code == 200
    assert all(signed_in(client) for client in (devices[1], devices[2], fifth))
    assert len(session_keys(redis)) == 3

    # Another user's sessions are counted apart.
    colleague = Auth(app, device(app, 6))
    colleague.register("admin@globex.test", "Globex")
    assert all(signed_in(client) for client in (devices[1], devices[2], fifth))


def test_by_default_a_user_keeps_ten_sessions(app: Flask, auth: Auth, redis: Redis) -> None:
    """The eleventh login of one user ends the first; ten stay signed in."""
    auth.register()
    auth.logout()
    devices = [device(app, n) for n in range(1, 12)]
    for client in devices:
        assert api_login(client).status_code == 200
    assert not signed_in(devices[0])
    assert all(signed_in(client) for client in devices[1:])
    assert len(session_keys(redis)) == 10
