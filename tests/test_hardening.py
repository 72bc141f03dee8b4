"""Hardening: ids that cannot exist are 404 on every route, odd `_method` parameters do not
break the pages, /readyz keeps its details for the operators, webhook addresses and lookups
are bounded, the SQLite files are private, a webhook retry is one warning line, and share
URLs never take a forged Host in production."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter, Rule

from app import create_app
from app.extensions import db as _db
from app.services import webhooks
from tests.support import ROOT
from tests.support.client import Auth, bearer, multipart
from tests.support.config import app_config
from tests.support.database import migrated_app
from tests.support.deployment import Deployment
from tests.support.processes import RedisServer
from tests.support.receiver import receiver

# Ids that no table can hold: past SQLite's 64-bit integers, and the bounds below 1.
HUGE_IDS = (2**63, 2**64)
OUT_OF_RANGE_IDS = (*HUGE_IDS, 0, -1)


# ---- ids that cannot exist ------------------------------------------------------------


def id_rules(app: Flask) -> list[Rule]:
    """Every route of the app that takes an integer from its path."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if any(isinstance(c, IntegerConverter) for c in (rule._converters or {}).values())
    ]


def path_with(rule: Rule, number: int) -> str:
    """The rule's path with `number` for each integer and a plausible value for the rest."""
    path = rule.rule
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            value = str(number)
        elif type(converter).__name__ == "UUIDConverter":
            value = str(uuid.uuid4())
        elif type(converter).__name__ == "AnyConverter":
            value = converter.regex.split("|")[0].strip("(?:)")
        else:
            value = "x"
        path = path.replace(f"<{converter_text(rule, name)}>", value)
    return path


def converter_text(rule: Rule, name: str) -> str:
    """The `converter(args):name` text of one argument in the rule's pattern."""
    start = rule.rule.index(f":{name}>")
    return rule.rule[rule.rule.rindex("<", 0, start) + 1 : start + len(name) + 1]


def test_every_route_with_an_id_is_404_for_an_id_that_cannot_exist(app: Flask, auth: Auth) -> None:
    """Signed in as an admin, with the CSRF token, every method of every route with an id:
    404 for ids of 2**63, 2**64, 0 and -1, never a 500 (SQLite overflows past 2**63 - 1)."""
    auth.register()
    rules = id_rules(app)
    # The pages' revoke, activate and delete forms, and the API's id routes.
    assert {r.endpoint for r in rules} >= {
        "web.revoke_token",
        "web.set_active",
        "web.revoke_link",
        "web.delete_webhook",
        "tokens.revoke",
        "links.revoke",
        "webhooks.delete",
        "webhooks.deliveries",
    }, sorted(r.endpoint for r in rules)
    answers = {}
    for rule in rules:
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for number in OUT_OF_RANGE_IDS:
                path = path_with(rule, number)
                response = auth.client.open(path, method=method, headers=auth.headers())
                answers[(method, path)] = response.status_code
                assert response.mimetype == "application/json", (method, path)
                assert response.get_json()["code"] == "not_found", (method, path)
    assert set(answers.values()) == {404}, answers


@pytest.mark.parametrize(
    "query",
    [
        "_method=POST",
        "_method=DELETE",
        "_method=",
        "_external=1&_scheme=javascript",
        "_anchor=x",
        "status=ready&_method=PUT",
    ],
)
def test_odd_url_parameters_leave_the_files_page_working(auth: Auth, query: str) -> None:
    """url_for reads `_method`, `_scheme` and the like as instructions; the files page takes
    only its own parameters into the URL its script refreshes the rows from."""
    auth.register()
    response = auth.client.get(f"/?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    page = response.get_data(as_text=True)
    expected = '"/files/rows?status=ready"' if "status=ready" in query else '"/files/rows"'
    assert f"data-rows-url={expected}" in page
    rows = auth.client.get(f"/files/rows?{query}")
    assert rows.status_code == 200


# ---- /readyz --------------------------------------------------------------------------

METRICS_TOKEN = "readyz-operator-token-0123456789"


class TestReadinessDetails:
    """/readyz names a failing dependency's host and port only to the operators."""

    @pytest.fixture
    def app_overrides(self, own_redis: RedisServer) -> dict[str, Any]:
        """The app talks to the test's own Redis, which the test stops."""
        return {"REDIS_URL": own_redis.url, "METRICS_TOKEN": METRICS_TOKEN}

    def test_only_allowed_clients_see_where_a_failing_check_points(
        self, app: Flask, own_redis: RedisServer
    ) -> None:
        port = str(urlsplit(own_redis.url).port)
        outsider = app.test_client()
        outsider.environ_base["REMOTE_ADDR"] = "203.0.113.9"
        operator = app.test_client()  # 127.0.0.1, the default METRICS_ALLOW
        own_redis.stop()

        seen = outsider.get("/readyz")
        assert seen.status_code == 503
        assert seen.get_json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "redis": "unavailable", "storage": "ok"},
        }
        assert port not in seen.get_data(as_text=True)

        for response in (
            operator.get("/readyz"),
            outsider.get("/readyz", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}),
        ):
            assert response.status_code == 503
            detail = response.get_json()["checks"]["redis"]
            assert detail.startswith("error: ") and port in detail


# ---- webhook addresses and lookups ------------------------------------------------------


def register_webhook(auth: Auth, url: str) -> Any:
    """POST /api/org/webhooks for file.ready as the signed-in admin."""
    return auth.client.post(
        "/api/org/webhooks", json={"url": url, "events": ["file.ready"]}, headers=auth.headers()
    )


NOT_GLOBAL_URLS = [
    "http://192.0.0.8/hook",
    "http://192.0.0.9/hook",
    "http://192.0.0.10/hook",
    "http://[fec0::1]/hook",
    "http://[fed0::8]:8443/hook",
    "http://93.184.215.14:0/hook",
]


@pytest.mark.parametrize("url", NOT_GLOBAL_URLS)
def test_addresses_that_are_not_global_and_port_0_are_refused(auth: Auth, url: str) -> None:
    auth.register()
    response = register_webhook(auth, url)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["code"] == "url_not_allowed"
    assert auth.client.get("/api/org/webhooks").get_json() == {"webhooks": []}


def test_a_global_address_is_still_accepted(auth: Auth) -> None:
    auth.register()
    for url in ("https://93.184.215.14:8443/hooks", "http://[2606:4700:4700::1111]/x"):
        response = register_webhook(auth, url)
        assert response.status_code == 201, response.get_json()


def test_an_address_that_is_not_global_is_refused_at_delivery(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """Registered while internal addresses were allowed; once not, nothing is sent."""
    auth.register()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    created = register_webhook(auth, "http://192.0.0.8/hook").get_json()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    assert auth.upload("notes.txt", b"hello\n").status_code == 201
    worker()
    recorded = auth.client.get(f"/api/org/webhooks/{created['id']}/deliveries").get_json()
    errors = [d["error"] for d in recorded["deliveries"]]
    assert errors and all(e.startswith("url_not_allowed: ") and "192.0.0.8" in e for e in errors)


def test_a_lookup_that_hangs_is_given_up_after_its_bound() -> None:
    """The bound the webhook lookups run under, with a real call that does not return until
    the test lets it: the caller gets TimeoutError while the call still hangs.

    (A DNS server that hangs cannot be set up for getaddrinfo inside the test process.)
    """
    release = threading.Event()
    hung = threading.Event()

    def lookup(host: str) -> list[str]:
        hung.set()
        release.wait(60)
        return [host]

    try:
        with pytest.raises(TimeoutError, match="no answer in 0.2 s"):
            webhooks.bounded(lookup, 0.2, "slow.example")
        assert hung.is_set() and not release.is_set()
        # Lookups that answer go through as before.
        assert webhooks.bounded(socket.getaddrinfo, 5, "127.0.0.1", 80)[0][4][0] == "127.0.0.1"
    finally:
        release.set()


# ---- the SQLite files -----------------------------------------------------------------


def test_the_sqlite_database_and_its_wal_are_private(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A fresh SQLite database, migrated and written to (an account, a webhook secret): the
    database, its -wal and its -shm are 0600, whatever the process's umask lets through."""
    database = tmp_path / "data" / "coffer.db"
    database.parent.mkdir()
    url = f"sqlite:///{database}"
    migrated_app(url, redis_server.url, tmp_path / "instance")
    served = create_app(app_config(url, redis_server.url, tmp_path, WEBHOOK_ALLOW_PRIVATE=True))
    try:
        writer = Auth(served, served.test_client())
        assert writer.register().status_code == 201
        assert register_webhook(writer, "http://127.0.0.1:9/hook").status_code == 201
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
            f.name: "0o600" for f in files
        }
    finally:
        with served.app_context():
            _db.engine.dispose()


# ---- webhook retries in the worker's log ----------------------------------------------


def test_a_webhook_retry_is_one_warning_line_without_a_traceback(
    app: Flask, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's entry point, as `manage.py worker --burst` runs it: the failed attempt
    is one WARNING line; no ERROR line and no traceback, since the retry is due later."""
    from jobs.worker import run

    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    auth.register()
    with receiver([500]) as hook:
        assert register_webhook(auth, hook.url).status_code == 201
        assert auth.upload("notes.txt", b"hello\n").status_code == 201
        caplog.clear()
        with caplog.at_level(logging.INFO):
            run(app, burst=True)
    assert len(hook.received) == 1
    attempts = [r for r in caplog.records if r.name == "app.services.webhooks"]
    assert [
        (r.levelname, r.getMessage().endswith("attempt 1: retrying (500)")) for r in attempts
    ] == [("WARNING", True)]
    assert [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in caplog.records)


# ---- PUBLIC_URL in production ---------------------------------------------------------


def test_production_refuses_to_start_without_public_url(deployment: Deployment) -> None:
    """`manage.py serve` with APP_ENV=production and no PUBLIC_URL: a one-line reason and a
    non-zero exit, before anything listens."""
    env = {k: v for k, v in deployment.env.items() if k != "PUBLIC_URL"}
    started = subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2, started.stderr[-500:]
    assert "error: PUBLIC_URL must be set when APP_ENV=production" in started.stderr


def test_production_share_urls_use_public_url_whatever_the_host_header(
    app: Flask,
    auth: Auth,
    worker: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
    migrated_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    auth.register()
    token = auth.token()
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "production-test-secret-" + "x" * 40)
    monkeypatch.setenv("PUBLIC_URL", "https://files.example.com")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # The same storage as `app`, whose worker validates the upload.
    same_storage = {k: app.config[k] for k in ("UPLOAD_FOLDER", "S3_PREFIX")}
    prod = create_app(app_config(migrated_database, redis_server.url, tmp_path, **same_storage))
    try:
        forged = prod.test_client()
        headers = {**bearer(token), "Host": "evil.example"}
        body, content_type = multipart("notes.txt", b"hello\n", "text/plain")
        uploaded = forged.post(
            "/api/files/upload", data=body, content_type=content_type, headers=headers
        )
        assert uploaded.status_code == 201, uploaded.get_json()
        worker()
        file_id = uploaded.get_json()["file_id"]
        made = forged.post(f"/api/files/{file_id}/links", json={}, headers=headers)
        assert made.status_code == 201, made.get_json()
        assert made.get_json()["url"].startswith("https://files.example.com/s/")
    finally:
        with prod.app_context():
            _db.engine.dispose()
        root.handlers[:] = handlers
        root.setLevel(level)
