"""HTTP plumbing: probes, JSON errors for every failure, headers and the session cookie."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.extensions import db as _db
from app.models import Organization
from tests.support.client import Auth
from tests.support.config import app_config
from tests.support.processes import RedisServer, free_port

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def assert_json_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the contract's JSON error, with no HTML and no traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"error", "code"}
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "Traceback" not in text
    return body


@pytest.fixture
def standalone_app(migrated_database: str, tmp_path: Path) -> Iterator[Any]:
    """Builds apps on the run's database with a Redis URL of the test's choosing."""
    made: list[Flask] = []

    def build(redis_url: str, **extra: Any) -> Flask:
        flask_app = create_app(app_config(migrated_database, redis_url, tmp_path, **extra))
        made.append(flask_app)
        return flask_app

    yield build
    for flask_app in made:
        flask_app.extensions["redis"].close()
        with flask_app.app_context():
            _db.engine.dispose()


# --- probes ---------------------------------------------------------------------------


def test_healthz_says_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_redis_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "storage": "ok"},
    }


def test_readyz_is_503_with_the_message_once_redis_goes_away(
    standalone_app: Any, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        flask_app = standalone_app(server.url)
        client = flask_app.test_client()
        assert client.get("/readyz").status_code == 200
    finally:
        server.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    message = body["checks"]["redis"]
    assert message != "ok"
    assert "connect" in message.lower()
    # The process itself still serves.
    assert client.get("/healthz").status_code == 200


def test_readyz_is_503_when_redis_was_never_there(standalone_app: Any) -> None:
    flask_app = standalone_app(f"redis://127.0.0.1:{free_port()}/0")
    response = flask_app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] != "ok" and body["checks"]["redis"]


# --- JSON errors ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/auth/nope", "/api/org/users/1/x"])
def test_an_unknown_path_is_a_json_404(client: FlaskClient, path: str) -> None:
    assert_json_error(client.get(path), 404, "not_found")
    assert_json_error(client.post(path), 404, "not_found")


def test_an_unknown_path_is_404_even_for_a_logged_in_write_without_csrf(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    assert_json_error(auth.client.post("/api/nope"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/auth/me", {"GET"}),
        ("GET", "/api/auth/login", {"POST"}),
        ("PUT", "/api/tokens", {"GET", "POST"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_a_wrong_method_is_a_json_405_with_allow(
    client: FlaskClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path, method=method)
    assert_json_error(response, 405, "method_not_allowed")
    listed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= listed
    assert method not in listed


OVERSIZED_JSON = '{"name": "' + "a" * (2 * 1024 * 1024) + '"}'


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
def test_an_oversized_json_body_is_a_json_413(client: FlaskClient, path: str) -> None:
    response = client.post(path, data=OVERSIZED_JSON, content_type="application/json")
    assert_json_error(response, 413, "payload_too_large")


def test_an_oversized_json_body_of_a_logged_in_user_is_a_json_413(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    response = auth.client.post(
        "/api/tokens", data=OVERSIZED_JSON, content_type="application/json", headers=auth.headers()
    )
    assert_json_error(response, 413, "payload_too_large")
    assert auth.client.get("/api/tokens").get_json()["tokens"] == []


def test_an_unexpected_exception_is_a_json_500_and_rolls_back(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        _db.session.add(Organization(name="Half Written", storage_quota_mb=1))
        _db.session.flush()
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/explode", "explode", explode, methods=["POST"])
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/explode")
    body = assert_json_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["error"] == "internal server error"
    assert "X-Request-ID" in response.headers
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)
    with app.app_context():
        count = _db.session.scalar(select(func.count()).select_from(Organization))
    assert count == 0
    # The next request is served normally.
    assert client.get("/healthz").status_code == 200


# --- headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/healthz"), ("GET", "/api/nope"), ("GET", "/api/auth/me")]
)
def test_security_headers_are_on_every_response(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value
    assert response.headers.get("Referrer-Policy")
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp


def test_a_supplied_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "trace-42.abc"})
    assert response.headers["X-Request-ID"] == "trace-42.abc"
    error = client.get("/api/nope", headers={"X-Request-ID": "trace-43"})
    assert error.headers["X-Request-ID"] == "trace-43"


@pytest.mark.parametrize("supplied", [None, "", "has space", "x" * 500, "<script>"])
def test_a_request_id_is_generated_when_none_usable_is_supplied(
    client: FlaskClient, supplied: str | None
) -> None:
    headers = {} if supplied is None else {"X-Request-ID": supplied}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", first)
    assert first != second
    assert first != supplied


# --- session cookie -------------------------------------------------------------------


def session_cookie_header(response: Any) -> str:
    """The Set-Cookie header that carries the session."""
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("coffer_")]
    return header


def test_the_session_cookie_is_httponly_and_samesite_lax(auth: Auth) -> None:
    header = session_cookie_header(auth.register("admin@acme.test", "Acme"))
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes


@pytest.mark.parametrize("app_overrides", [{"SESSION_COOKIE_SECURE": True}])
def test_the_session_cookie_is_secure_when_configured(auth: Auth) -> None:
    header = session_cookie_header(auth.register("admin@acme.test", "Acme"))
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
