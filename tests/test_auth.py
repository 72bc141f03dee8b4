"""The auth endpoints of the contract: register, login, logout, me, csrf and CSRF checks."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select, update

from app.models import Invite, User, utcnow
from tests.support.client import Auth

SESSION_COOKIE = "coffer_session"
SESSION_PREFIX = "coffer:session:"


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    """The response is the contract's JSON error with this status, code and field."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert body["field"] == field


def session_cookie(client: FlaskClient) -> str | None:
    """The value of the client's session cookie, if it holds one."""
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie is not None else None


def user_count(db: Any) -> int:
    """How many users exist."""
    return db.session.scalar(select(func.count()).select_from(User))


# --- register -------------------------------------------------------------------------


def test_register_creating_an_organization_makes_the_user_its_admin(auth: Auth) -> None:
    response = auth.register("admin@acme.test", "Acme")
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"user_id", "email", "organization_id", "role", "csrf_token"}
    assert isinstance(body["user_id"], int)
    assert isinstance(body["organization_id"], int)
    assert body["email"] == "admin@acme.test"
    assert body["role"] == "admin"
    assert isinstance(body["csrf_token"], str) and body["csrf_token"]

    me = auth.client.get("/api/auth/me")
    assert me.status_code == 200
    assert me.get_json()["user_id"] == body["user_id"]
    assert me.get_json()["organization_name"] == "Acme"


def test_register_stores_the_email_trimmed_and_lower_cased(auth: Auth) -> None:
    response = auth.register("  Mixed.Case@Acme.TEST ", "Acme")
    assert response.status_code == 201
    assert response.get_json()["email"] == "mixed.case@acme.test"
    auth.logout()
    assert auth.login("mixed.case@acme.test").status_code == 200


def test_joining_an_existing_organization_without_invite_is_409_invite_required(
    auth: Auth, db: Any
) -> None:
    assert auth.register("admin@acme.test", "Acme").status_code == 201
    other = auth.another()
    for name in ("Acme", "ACME", "  acme  "):
        response = other.register("intruder@evil.test", name)
        assert_error(response, 409, "invite_required")
    assert user_count(db) == 1


def test_joining_with_a_valid_invite_makes_a_member_of_that_organization(auth: Auth) -> None:
    admin = auth.register("admin@acme.test", "Acme").get_json()
    code = auth.invite()
    member = auth.another()
    response = member.register("member@acme.test", "acme", invite_code=code)
    assert response.status_code == 201
    body = response.get_json()
    assert body["role"] == "member"
    assert body["organization_id"] == admin["organization_id"]
    me = member.client.get("/api/auth/me").get_json()
    assert me["organization_name"] == "Acme"
    assert me["role"] == "member"


def test_an_organization_with_a_non_ascii_name_can_be_joined(auth: Auth) -> None:
    admin = auth.register("admin@aerzte.test", "Ärzte Zürich").get_json()
    response = auth.another().register(
        "member@aerzte.test", "ÄRZTE Zürich", invite_code=auth.invite()
    )
    assert response.status_code == 201
    assert response.get_json()["organization_id"] == admin["organization_id"]
    assert_error(auth.another().register("new@aerzte.test", "Ärzte Zürich"), 409, "invite_required")


def test_an_invite_code_admits_only_one_registration(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    code = auth.invite()
    first = auth.another().register("first@acme.test", "Acme", invite_code=code)
    assert first.status_code == 201
    second = auth.another().register("second@acme.test", "Acme", invite_code=code)
    assert_error(second, 400, "invite_invalid")


def register_at_once(app: Flask, bodies: list[dict[str, str]]) -> list[Any]:
    """POST every registration body at the same moment, each from its own client."""
    barrier = threading.Barrier(len(bodies))
    answers: list[Any] = []

    def register(body: dict[str, str]) -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        answers.append(client.post("/api/auth/register", json=body))

    threads = [threading.Thread(target=register, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(answers, key=lambda r: r.status_code)


def test_two_simultaneous_registrations_of_one_email_give_one_account_and_409(
    app: Flask, db: Any
) -> None:
    bodies = [
        {"email": "same@acme.test", "password": Auth.password, "organization_name": name}
        for name in ("Acme", "Globex")
    ]
    created, refused = register_at_once(app, bodies)
    assert created.status_code == 201
    assert_error(refused, 409, "email_taken")
    assert user_count(db) == 1


def test_two_simultaneous_registrations_of_one_new_organization_make_one_admin(
    app: Flask, db: Any
) -> None:
    bodies = [
        {"email": email, "password": Auth.password, "organization_name": "NewCo"}
        for email in ("first@newco.test", "second@newco.test")
    ]
    created, refused = register_at_once(app, bodies)
    assert created.status_code == 201
    assert created.get_json()["role"] == "admin"
    assert_error(refused, 409, "invite_required")
    assert user_count(db) == 1


def test_two_simultaneous_registrations_with_one_invite_admit_one(
    app: Flask, auth: Auth, db: Any
) -> None:
    auth.register("admin@acme.test", "Acme")
    code = auth.invite()
    bodies = [
        {
            "email": f"user{i}@acme.test",
            "password": Auth.password,
            "organization_name": "Acme",
            "invite_code": code,
        }
        for i in range(2)
    ]
    admitted, refused = register_at_once(app, bodies)
    assert admitted.status_code == 201
    assert admitted.get_json()["role"] == "member"
    assert_error(refused, 400, "invite_invalid")
    assert user_count(db) == 2


def test_an_expired_invite_is_invalid(auth: Auth, db: Any) -> None:
    auth.register("admin@acme.test", "Acme")
    code = auth.invite()
    with db.engine.begin() as conn:
        conn.execute(update(Invite).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = auth.another().register("late@acme.test", "Acme", invite_code=code)
    assert_error(response, 400, "invite_invalid")


def test_a_wrong_invite_code_is_invalid(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.invite()
    response = auth.another().register("guess@acme.test", "Acme", invite_code="not-a-code")
    assert_error(response, 400, "invite_invalid")


def test_an_invite_of_another_organization_is_invalid(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    acme_code = auth.invite()
    globex = auth.another()
    assert globex.register("admin@globex.test", "Globex").status_code == 201
    response = auth.another().register("sneaky@globex.test", "Acme", invite_code="x" + acme_code)
    assert_error(response, 400, "invite_invalid")
    response = auth.another().register("sneaky@acme.test", "Globex", invite_code=acme_code)
    assert_error(response, 400, "invite_invalid")
    # The refused attempt did not use the code up.
    response = auth.another().register("welcome@acme.test", "Acme", invite_code=acme_code)
    assert response.status_code == 201


def test_an_invite_code_does_not_create_a_new_organization(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    code = auth.invite()
    response = auth.another().register("typo@acme.test", "Acmee", invite_code=code)
    assert_error(response, 400, "invite_invalid")


@pytest.mark.parametrize("app_overrides", [{"OPEN_JOIN": True}])
def test_open_join_lets_anyone_join_an_organization_by_name(auth: Auth) -> None:
    admin = auth.register("admin@acme.test", "Acme").get_json()
    response = auth.another().register("colleague@acme.test", "ACME")
    assert response.status_code == 201
    assert response.get_json()["role"] == "member"
    assert response.get_json()["organization_id"] == admin["organization_id"]


def test_a_taken_email_is_409_compared_case_insensitively(auth: Auth, db: Any) -> None:
    auth.register("admin@acme.test", "Acme")
    response = auth.another().register("ADMIN@Acme.Test", "Other Org")
    assert_error(response, 409, "email_taken")
    assert user_count(db) == 1


@pytest.mark.parametrize(
    "email", ["plainaddress", "no-at.test", "two@@acme.test", "a b@acme.test", "x@nodot", "@a.b"]
)
def test_register_with_an_invalid_email_is_400_naming_email(auth: Auth, email: str) -> None:
    assert_error(auth.register(email, "Acme"), 400, "invalid_email", field="email")


def test_register_with_a_password_shorter_than_10_is_400_weak_password(auth: Auth, db: Any) -> None:
    response = auth.register("admin@acme.test", "Acme", password="x7#kq9!mz")
    assert_error(response, 400, "weak_password", field="password")
    assert "at least 10 characters" in response.get_json()["error"]
    assert user_count(db) == 0
    assert auth.register("admin@acme.test", "Acme", password="x7#kq9!mz2").status_code == 201


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "1234567890",
        "qwertyuiop",
        "QwertyUIOP",  # compared whatever the case
        "PASSWORD123",
        "1q2w3e4r5t",
    ],
)
def test_register_with_one_of_the_10000_most_common_passwords_is_400_weak_password(
    auth: Auth, db: Any, password: str
) -> None:
    response = auth.register("admin@acme.test", "Acme", password=password)
    assert_error(response, 400, "weak_password", field="password")
    assert user_count(db) == 0


def test_register_with_a_password_over_72_bytes_is_400(auth: Auth) -> None:
    # 37 characters, but 74 bytes in UTF-8: bcrypt would silently ignore the tail.
    response = auth.register("admin@acme.test", "Acme", password="é" * 37)
    assert_error(response, 400, "invalid_password", field="password")
    response = auth.register("admin@acme.test", "Acme", password="a" * 73)
    assert_error(response, 400, "invalid_password", field="password")


def test_a_72_byte_password_works_in_full(auth: Auth) -> None:
    password = "p" * 72
    assert auth.register("admin@acme.test", "Acme", password=password).status_code == 201
    auth.logout()
    assert_error(auth.login(password="p" * 71), 401, "invalid_credentials")
    assert auth.login(password=password).status_code == 200


@pytest.mark.parametrize("field", ["email", "password", "organization_name"])
def test_register_without_a_field_is_400_naming_it(client: FlaskClient, field: str) -> None:
    body = {"email": "a@acme.test", "password": "long enough", "organization_name": "Acme"}
    del body[field]
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 400, "missing_field", field=field)
    body[field] = "   " if field != "password" else ""
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 400, "missing_field", field=field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", 42),
        ("password", ["long enough"]),
        ("organization_name", {"name": "Acme"}),
        ("invite_code", 12345),
        ("email", True),
    ],
)
def test_register_with_a_field_of_the_wrong_type_is_400_naming_it(
    client: FlaskClient, field: str, value: Any
) -> None:
    body = {"email": "a@acme.test", "password": "long enough", "organization_name": "Acme"}
    body[field] = value
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 400, "invalid_field", field=field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "a\x00b@acme.test"),
        ("email", "a\x07@acme.test"),
        ("organization_name", "Ac\x00me"),
        ("organization_name", "Acme\nInc"),
        ("organization_name", "Ac\x85me"),
        ("invite_code", "code\x00"),
        ("organization_name", "Acme \ud800"),
        ("password", "long enough \udfff"),
    ],
)
def test_register_with_control_characters_or_broken_unicode_is_400_naming_the_field(
    client: FlaskClient, db: Any, field: str, value: str
) -> None:
    body = {"email": "a@acme.test", "password": "long enough", "organization_name": "Acme"}
    body[field] = value
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 400, "invalid_field", field=field)
    assert user_count(db) == 0


def test_surrounding_space_and_newlines_are_trimmed_not_refused(auth: Auth) -> None:
    response = auth.register("  admin@acme.test\n", "\tAcme Corp \r\n")
    assert response.status_code == 201
    assert auth.client.get("/api/auth/me").get_json()["organization_name"] == "Acme Corp"


def test_a_password_may_hold_any_text(auth: Auth) -> None:
    password = "tab\there nul\x00 and ünïcode"
    assert auth.register("admin@acme.test", "Acme", password=password).status_code == 201
    auth.logout()
    assert_error(auth.login(password="tab\there nul\x00 and unicode"), 401, "invalid_credentials")
    assert auth.login(password=password).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"), [("email", "admin\x00@acme.test"), ("password", "\ud800 long enough")]
)
def test_login_with_control_characters_or_broken_unicode_is_400(
    auth: Auth, field: str, value: str
) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.logout()
    body = {"email": "admin@acme.test", "password": Auth.password, field: value}
    response = auth.client.post("/api/auth/login", json=body)
    assert_error(response, 400, "invalid_field", field=field)


def test_register_with_an_over_long_organization_name_is_400(auth: Auth) -> None:
    response = auth.register("admin@acme.test", "A" * 101)
    assert_error(response, 400, "invalid_field", field="organization_name")
    assert auth.register("admin@acme.test", "A" * 100).status_code == 201


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"email": "a@acme.test", "password": ', "application/json"),
        ('["a@acme.test", "long enough", "Acme"]', "application/json"),
        ('"just a string"', "application/json"),
        ("", "application/json"),
        ("email=a%40acme.test&password=longenough&organization_name=Acme", None),
        ('{"email": "a@acme.test"}', "text/plain"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        (b'{"email": "\xff\xfe@acme.test"}', "application/json"),
    ],
    ids=["malformed", "array", "string", "empty", "form", "text-plain", "deep", "not-utf8"],
)
@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
def test_a_body_that_is_not_a_json_object_is_400_invalid_json(
    client: FlaskClient, path: str, data: str | bytes, content_type: str | None
) -> None:
    if content_type is None:
        response = client.post(path, data={"email": "a@acme.test", "password": "longenough"})
    else:
        response = client.post(path, data=data, content_type=content_type)
    assert_error(response, 400, "invalid_json")


# --- login ----------------------------------------------------------------------------


def test_login_answers_the_identity_and_a_csrf_token(auth: Auth) -> None:
    registered = auth.register("admin@acme.test", "Acme").get_json()
    auth.logout()
    response = auth.login("admin@acme.test")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"user_id", "email", "organization_id", "role", "csrf_token"}
    assert body["user_id"] == registered["user_id"]
    assert body["organization_id"] == registered["organization_id"]
    assert body["email"] == "admin@acme.test"
    assert body["role"] == "admin"
    assert isinstance(body["csrf_token"], str) and body["csrf_token"]
    assert auth.client.get("/api/auth/me").status_code == 200


def test_login_compares_emails_case_insensitively(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.logout()
    response = auth.login("  ADMIN@Acme.TEST ")
    assert response.status_code == 200
    assert response.get_json()["email"] == "admin@acme.test"


def test_login_with_wrong_password_is_401_like_unknown_email(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.logout()
    wrong_password = auth.login("admin@acme.test", password="not the password")
    unknown_email = auth.login("nobody@acme.test", password="not the password")
    assert_error(wrong_password, 401, "invalid_credentials")
    assert wrong_password.get_json() == unknown_email.get_json()
    assert unknown_email.status_code == 401
    assert auth.client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("field", ["email", "password"])
def test_login_without_a_field_is_400_naming_it(client: FlaskClient, field: str) -> None:
    body = {"email": "a@acme.test", "password": "long enough"}
    del body[field]
    assert_error(client.post("/api/auth/login", json=body), 400, "missing_field", field=field)
    body[field] = 7
    assert_error(client.post("/api/auth/login", json=body), 400, "invalid_field", field=field)


def test_a_disabled_account_gets_403_only_after_the_correct_password(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    code = auth.invite()
    member = auth.another()
    member_id = member.register("member@acme.test", "Acme", invite_code=code).get_json()["user_id"]
    response = auth.client.post(f"/api/org/users/{member_id}/deactivate", headers=auth.headers())
    assert response.status_code == 200

    wrong = member.login("member@acme.test", password="not the password")
    assert_error(wrong, 401, "invalid_credentials")
    right = member.login("member@acme.test")
    assert_error(right, 403, "account_disabled")
    assert member.client.get("/api/auth/me").status_code == 401


def test_login_rotates_the_session_id(auth: Auth, redis: Redis) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.logout()
    # A visitor (or whoever planted the cookie) gets a session before logging in: a
    # signed cookie, nothing stored.
    planted_csrf = auth.client.get("/api/auth/csrf").get_json()["csrf_token"]
    planted = session_cookie(auth.client)
    assert planted is not None
    assert redis.keys(SESSION_PREFIX + "*") == []

    assert auth.login().status_code == 200
    authenticated = session_cookie(auth.client)
    assert authenticated is not None and authenticated != planted
    assert not redis.exists(SESSION_PREFIX + planted)
    assert auth.client.get("/api/auth/me").status_code == 200

    attacker = auth.app.test_client()
    attacker.set_cookie(SESSION_COOKIE, planted)
    assert_error(attacker.get("/api/auth/me"), 401, "unauthorized")
    # Nor does the pre-login CSRF token carry over.
    stale = auth.client.post("/api/org/invites", headers={"X-CSRF-Token": planted_csrf})
    assert_error(stale, 400, "csrf_failed")


def test_logging_in_as_someone_else_ends_the_previous_session(auth: Auth, redis: Redis) -> None:
    auth.another().register("admin@globex.test", "Globex")
    auth.register("admin@acme.test", "Acme")
    first = session_cookie(auth.client)
    assert auth.login("admin@globex.test").status_code == 200
    assert auth.client.get("/api/auth/me").get_json()["email"] == "admin@globex.test"
    assert not redis.exists(SESSION_PREFIX + (first or ""))


def test_register_also_starts_a_fresh_session(auth: Auth) -> None:
    auth.client.get("/api/auth/csrf")
    planted = session_cookie(auth.client)
    assert auth.register("admin@acme.test", "Acme").status_code == 201
    assert session_cookie(auth.client) != planted
    attacker = auth.app.test_client()
    attacker.set_cookie(SESSION_COOKIE, planted or "")
    assert attacker.get("/api/auth/me").status_code == 401


def login_as(client: FlaskClient, email: str, password: str = "wrong password") -> Any:
    """One login attempt."""
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_the_sixth_login_attempt_in_a_minute_for_one_email_is_429(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.logout()
    client = auth.client
    for _ in range(5):
        assert_error(login_as(client, "admin@acme.test"), 401, "invalid_credentials")
    limited = login_as(client, "admin@acme.test")
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Even the right password waits: the limit is on attempts, not on failures.
    assert_error(login_as(client, "ADMIN@acme.test", Auth.password), 429, "rate_limited")

    # Another email from the same address, and the same email from another address,
    # are unaffected.
    assert_error(login_as(client, "someone@acme.test"), 401, "invalid_credentials")
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert login_as(elsewhere, "admin@acme.test", Auth.password).status_code == 200

    # The counters are in the app's Redis.
    assert redis.keys("*coffer:limit*login-email*")


@pytest.mark.parametrize("app_overrides", [{"LOGIN_LIMIT_PER_ADDRESS": "3 per minute"}])
def test_the_per_address_login_limit_applies_across_emails(app: Flask, client: FlaskClient) -> None:
    for i in range(3):
        assert_error(login_as(client, f"user{i}@acme.test"), 401, "invalid_credentials")
    assert_error(login_as(client, "user9@acme.test"), 429, "rate_limited")
    other_address = app.test_client()
    other_address.environ_base["REMOTE_ADDR"] = "192.0.2.8"
    assert_error(login_as(other_address, "user9@acme.test"), 401, "invalid_credentials")


@pytest.mark.parametrize("app_overrides", [{"REGISTER_LIMIT_PER_ADDRESS": "3 per hour"}])
def test_registrations_from_one_address_are_limited(app: Flask, client: FlaskClient) -> None:
    def register(c: FlaskClient, n: int) -> Any:
        body = {"email": f"u{n}@o{n}.test", "password": Auth.password, "organization_name": f"O{n}"}
        return c.post("/api/auth/register", json=body)

    for n in range(3):
        assert register(app.test_client(), n).status_code == 201
    limited = register(app.test_client(), 3)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Nothing was created for the refused one; another address is unaffected.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    assert register(elsewhere, 3).status_code == 201
    assert register(elsewhere, 4).status_code == 201


# --- logout ---------------------------------------------------------------------------


def test_logout_destroys_the_server_side_session(auth: Auth, redis: Redis) -> None:
    auth.register("admin@acme.test", "Acme")
    old_cookie = session_cookie(auth.client)
    assert old_cookie is not None
    assert redis.keys(SESSION_PREFIX + "*") == [(SESSION_PREFIX + old_cookie).encode()]

    response = auth.logout()
    assert response.status_code == 200
    assert response.get_json() == {"success": True}
    assert redis.keys(SESSION_PREFIX + "*") == []
    assert_error(auth.client.get("/api/auth/me"), 401, "unauthorized")

    replay = auth.app.test_client()
    replay.set_cookie(SESSION_COOKIE, old_cookie)
    assert_error(replay.get("/api/auth/me"), 401, "unauthorized")
    assert_error(replay.post("/api/org/invites", headers=auth.headers()), 401, "unauthorized")


def test_logout_leaves_other_sessions_of_the_user_alone(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    laptop = auth.another()
    assert laptop.login().status_code == 200
    assert auth.logout().status_code == 200
    assert laptop.client.get("/api/auth/me").status_code == 200


def test_logout_when_not_logged_in_is_401(client: FlaskClient) -> None:
    assert_error(client.post("/api/auth/logout"), 401, "unauthorized")


# --- CSRF -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/auth/logout"),
        ("POST", "/api/org/invites"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/1"),
    ],
)
def test_a_cookie_write_without_or_with_a_wrong_csrf_token_is_400(
    auth: Auth, method: str, path: str
) -> None:
    auth.register("admin@acme.test", "Acme")
    other = auth.another()
    other.register("admin@globex.test", "Globex")
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": other.csrf or ""}):
        response = auth.client.open(path, method=method, json={"name": "x"}, headers=headers)
        assert_error(response, 400, "csrf_failed")
    # Nothing happened: still logged in, no token made.
    assert auth.client.get("/api/auth/me").status_code == 200
    assert auth.client.get("/api/tokens").get_json()["tokens"] == []


def test_the_csrf_token_form_field_is_accepted(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    wrong = auth.client.post("/api/auth/logout", data={"csrf_token": "wrong"})
    assert_error(wrong, 400, "csrf_failed")
    response = auth.client.post("/api/auth/logout", data={"csrf_token": auth.csrf})
    assert response.status_code == 200
    assert auth.client.get("/api/auth/me").status_code == 401


def test_bearer_token_writes_need_no_csrf_token(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    secret = auth.token()
    bearer = auth.app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert bearer.post("/api/org/invites", headers=headers).status_code == 201
    created = bearer.post("/api/tokens", json={"name": "second"}, headers=headers)
    assert created.status_code == 201
    deleted = bearer.delete(f"/api/tokens/{created.get_json()['id']}", headers=headers)
    assert deleted.status_code == 204


def test_the_token_from_get_csrf_works_for_cookie_writes(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    response = auth.client.get("/api/auth/csrf")
    assert response.status_code == 200
    assert set(response.get_json()) == {"csrf_token"}
    token = response.get_json()["csrf_token"]
    assert isinstance(token, str) and token
    created = auth.client.post("/api/org/invites", headers={"X-CSRF-Token": token})
    assert created.status_code == 201


def test_get_csrf_works_without_logging_in(client: FlaskClient) -> None:
    response = client.get("/api/auth/csrf")
    assert response.status_code == 200
    assert response.get_json()["csrf_token"]


# --- me -------------------------------------------------------------------------------


def test_me_answers_every_field(auth: Auth) -> None:
    registered = auth.register("admin@acme.test", "Acme Corp").get_json()
    response = auth.client.get("/api/auth/me")
    assert response.status_code == 200
    assert response.get_json() == {
        "user_id": registered["user_id"],
        "email": "admin@acme.test",
        "organization_id": registered["organization_id"],
        "organization_name": "Acme Corp",
        "role": "admin",
    }


def test_me_unauthenticated_is_401_json_never_a_redirect(client: FlaskClient) -> None:
    response = client.get("/api/auth/me")
    assert_error(response, 401, "unauthorized")
    assert "Location" not in response.headers
    assert "WWW-Authenticate" not in response.headers


def test_a_garbage_bearer_token_is_401_and_does_not_fall_back_to_the_cookie(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    response = auth.client.get("/api/auth/me", headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, "unauthorized")
    assert auth.client.get("/api/auth/me").status_code == 200


@pytest.mark.parametrize("app_overrides", [{"BCRYPT_ROUNDS": 10}])
def test_login_for_an_unknown_email_takes_as_long_as_a_wrong_password(auth: Auth) -> None:
    """No account enumeration by timing: an unknown email still costs a bcrypt check.

    At this cost factor a bcrypt check is tens of milliseconds while the rest of a login
    is a few, so skipping it for unknown emails would make them several times faster.
    """
    auth.register("admin@acme.test", "Acme")
    auth.logout()

    def login_seconds(email: str) -> float:
        started = time.perf_counter()
        response = auth.login(email, password="not the password")
        elapsed = time.perf_counter() - started
        assert response.status_code == 401
        return elapsed

    wrong_password = sorted(login_seconds("admin@acme.test") for _ in range(3))
    unknown_email = sorted(login_seconds(f"nobody{i}@acme.test") for i in range(3))
    # Medians, compared loosely: the point is the same order of magnitude.
    assert unknown_email[1] > 0.5 * wrong_password[1], (unknown_email, wrong_password)
