"""API tokens: shown once, stored as a hash, authenticate without CSRF, revocable at once."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.support.client import Auth, arabic_indic

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def parse_timestamp(value: Any) -> datetime:
    """A contract timestamp (ISO 8601, UTC, trailing Z) as an aware datetime."""
    assert isinstance(value, str) and TIMESTAMP.match(value), value
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    """The response is the contract's JSON error with this status, code and field."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["code"] == code
    assert body["error"]
    if field is not None:
        assert body["field"] == field


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def user(auth: Auth) -> Auth:
    """A logged-in admin of Acme."""
    assert auth.register("admin@acme.test", "Acme").status_code == 201
    return auth


def create(user: Auth, name: Any = "deploy script") -> Any:
    """POST /api/tokens as the logged-in user."""
    return user.client.post("/api/tokens", json={"name": name}, headers=user.headers())


def test_creating_a_token_shows_its_secret_once(user: Auth) -> None:
    response = create(user, "deploy script")
    assert response.status_code == 201
    body = response.get_json()
    assert {"id", "name", "token", "created_at"} <= set(body)
    assert isinstance(body["id"], int)
    assert body["name"] == "deploy script"
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    created = parse_timestamp(body["created_at"])
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)

    listed = user.client.get("/api/tokens")
    assert listed.status_code == 200
    assert body["token"] not in listed.get_data(as_text=True)
    [token] = listed.get_json()["tokens"]
    assert token == {
        "id": body["id"],
        "name": "deploy script",
        "access": "write",
        "created_at": body["created_at"],
        "last_used_at": None,
        "expires_at": None,
    }


def test_each_token_has_its_own_secret(user: Auth) -> None:
    first = create(user, "one").get_json()
    second = create(user, "one").get_json()
    assert first["token"] != second["token"]
    assert first["id"] != second["id"]
    names = [t["name"] for t in user.client.get("/api/tokens").get_json()["tokens"]]
    assert names == ["one", "one"]


def test_the_database_stores_only_a_hash_of_the_secret(user: Auth, db: Any) -> None:
    secret = create(user).get_json()["token"]
    with db.engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(text("SELECT * FROM api_tokens"))]
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert secret not in stored
    assert secret.split("_", 1)[-1] not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() in stored


def test_a_token_authenticates_as_its_user(user: Auth, app: Flask) -> None:
    me = user.client.get("/api/auth/me").get_json()
    secret = create(user).get_json()["token"]
    script = app.test_client()
    response = script.get("/api/auth/me", headers=bearer(secret))
    assert response.status_code == 200
    assert response.get_json() == me
    assert script.get("/api/auth/me").status_code == 401


def test_a_token_writes_without_a_csrf_token(user: Auth, app: Flask) -> None:
    secret = create(user).get_json()["token"]
    script = app.test_client()
    assert script.post("/api/org/invites", headers=bearer(secret)).status_code == 201
    made = script.post("/api/tokens", json={"name": "made by a script"}, headers=bearer(secret))
    assert made.status_code == 201
    uploaded = user.upload("from-script.txt", b"scripted\n", headers=bearer(secret))
    assert uploaded.status_code == 201


def test_using_a_token_sets_last_used_at(user: Auth, app: Flask) -> None:
    secret = create(user).get_json()["token"]
    [before] = user.client.get("/api/tokens").get_json()["tokens"]
    assert before["last_used_at"] is None
    assert app.test_client().get("/api/org", headers=bearer(secret)).status_code == 200
    [after] = user.client.get("/api/tokens").get_json()["tokens"]
    used = parse_timestamp(after["last_used_at"])
    assert abs(datetime.now(UTC) - used) < timedelta(minutes=1)


def test_revoking_a_token_stops_it_at_once(user: Auth, app: Flask) -> None:
    created = create(user).get_json()
    kept = create(user, "kept").get_json()
    script = app.test_client()
    assert script.get("/api/auth/me", headers=bearer(created["token"])).status_code == 200

    response = user.client.delete(f"/api/tokens/{created['id']}", headers=user.headers())
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(script.get("/api/auth/me", headers=bearer(created["token"])), 401, "unauthorized")
    listed = user.client.get("/api/tokens").get_json()["tokens"]
    assert [t["id"] for t in listed] == [kept["id"]]
    assert script.get("/api/auth/me", headers=bearer(kept["token"])).status_code == 200
    again = user.client.delete(f"/api/tokens/{created['id']}", headers=user.headers())
    assert_error(again, 404, "not_found")


def test_a_token_can_revoke_itself(user: Auth, app: Flask) -> None:
    created = create(user).get_json()
    script = app.test_client()
    response = script.delete(f"/api/tokens/{created['id']}", headers=bearer(created["token"]))
    assert response.status_code == 204
    assert script.get("/api/auth/me", headers=bearer(created["token"])).status_code == 401


def test_another_users_token_is_404_and_keeps_working(user: Auth, app: Flask) -> None:
    colleague = user.another()
    colleague.register("member@acme.test", "Acme", invite_code=user.invite())
    stranger = user.another()
    stranger.register("admin@globex.test", "Globex")
    theirs = create(colleague).get_json()
    foreign = create(stranger).get_json()
    unknown = user.client.delete(f"/api/tokens/{foreign['id'] + 1000}", headers=user.headers())
    assert_error(unknown, 404, "not_found")

    for token in (theirs, foreign):
        response = user.client.delete(f"/api/tokens/{token['id']}", headers=user.headers())
        assert_error(response, 404, "not_found")
        assert response.get_json() == unknown.get_json()
        me = app.test_client().get("/api/auth/me", headers=bearer(token["token"]))
        assert me.status_code == 200
    assert user.client.get("/api/tokens").get_json()["tokens"] == []
    assert [t["id"] for t in colleague.client.get("/api/tokens").get_json()["tokens"]] == [
        theirs["id"]
    ]


def test_a_token_id_in_digits_other_than_ascii_is_404(user: Auth, app: Flask) -> None:
    created = create(user).get_json()
    foreign_digits = arabic_indic(created["id"])

    response = user.client.delete(f"/api/tokens/{foreign_digits}", headers=user.headers())

    assert_error(response, 404, "not_found")
    me = app.test_client().get("/api/auth/me", headers=bearer(created["token"]))
    assert me.status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_field"),
        ({"name": ""}, "missing_field"),
        ({"name": "   "}, "missing_field"),
        ({"name": None}, "missing_field"),
        ({"name": 42}, "invalid_field"),
        ({"name": ["list"]}, "invalid_field"),
        ({"name": "n" * 101}, "invalid_field"),
        ({"name": "nul\x00name"}, "invalid_field"),
        ({"name": "line\nbreak"}, "invalid_field"),
        ({"name": "broken \ud800"}, "invalid_field"),
    ],
)
def test_creating_a_token_without_a_valid_name_is_400(
    user: Auth, body: dict[str, Any], code: str
) -> None:
    response = user.client.post("/api/tokens", json=body, headers=user.headers())
    assert_error(response, 400, code, field="name")
    assert user.client.get("/api/tokens").get_json()["tokens"] == []


def test_creating_a_token_with_a_body_that_is_not_json_is_400(user: Auth) -> None:
    response = user.client.post(
        "/api/tokens", data="name=x", content_type="text/plain", headers=user.headers()
    )
    assert_error(response, 400, "invalid_json")


def test_a_100_character_name_is_accepted(user: Auth) -> None:
    response = create(user, "n" * 100)
    assert response.status_code == 201
    assert response.get_json()["name"] == "n" * 100


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/tokens"), ("GET", "/api/tokens"), ("DELETE", "/api/tokens/1")],
)
def test_token_endpoints_unauthenticated_are_401(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method, json={"name": "x"})
    assert_error(response, 401, "unauthorized")
    response = client.open(path, method=method, json={"name": "x"}, headers=bearer("coffer_bad"))
    assert_error(response, 401, "unauthorized")
