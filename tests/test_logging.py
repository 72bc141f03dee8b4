"""Logs: one line per request with its id, JSON lines in production, job start and end
with the file id, and no password or secret in any line."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import logs
from jobs.worker import run as run_worker
from tests.support.client import Auth

ACCESS_FIELDS = {"request_id", "method", "path", "status", "duration_ms"}


class Captured:
    """What Coffer's log handler wrote, as production (JSON) or development (plain) lines."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler: logging.Handler | None = None

    @property
    def text(self) -> str:
        """Everything logged so far (written by the handler's thread: waited for)."""
        if self.handler is not None:
            self.handler.flush()
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Each JSON line, decoded (fails if a line is not JSON)."""
        return [json.loads(line) for line in self.text.splitlines() if line]

    def access(self) -> list[dict[str, Any]]:
        """The one-per-request lines."""
        return [r for r in self.records() if r["logger"] == "coffer.access"]


@contextmanager
def capture(json_lines: bool) -> Iterator[Captured]:
    """Install Coffer's handler (as a non-test app would) on a buffer, at DEBUG so that
    every library's chatter is checked too; restore the root logger afterwards."""
    captured = Captured()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure(json_lines=json_lines, level=logging.DEBUG, stream=captured.stream)
    captured.handler = handler
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[Captured]:
    """Production logging into a buffer."""
    with capture(json_lines=True) as captured:
        yield captured


@pytest.fixture
def plain_log() -> Iterator[Captured]:
    """Development logging into a buffer."""
    with capture(json_lines=False) as captured:
        yield captured


def test_one_json_line_per_request_with_its_id(client: FlaskClient, json_log: Captured) -> None:
    """Each request logs method, path, status, duration and the request id it echoes."""
    supplied = client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"})
    assert supplied.headers["X-Request-ID"] == "trace-42.a:b"
    generated = client.get("/api/files")
    generated_id = generated.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated_id)
    # An id that could forge log content is replaced, not echoed.
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" injected'})
    forged_id = forged.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", forged_id)

    lines = json_log.access()
    assert len(lines) == 3
    first, second, third = lines
    assert {key: first[key] for key in ("request_id", "method", "path", "status")} == {
        "request_id": "trace-42.a:b",
        "method": "GET",
        "path": "/healthz",
        "status": 200,
    }
    assert isinstance(first["duration_ms"], int | float) and first["duration_ms"] >= 0
    assert (second["request_id"], second["path"], second["status"]) == (
        generated_id,
        "/api/files",
        401,
    )
    assert third["request_id"] == forged_id
    assert all(ACCESS_FIELDS <= set(line) for line in lines)
    assert all(line["level"] == "info" and line["time"].endswith("Z") for line in lines)


def test_plain_lines_in_development_carry_the_request_id(
    client: FlaskClient, plain_log: Captured
) -> None:
    """Development lines are readable text with the same facts."""
    response = client.get("/api/org", headers={"X-Request-ID": "dev-1"})
    assert response.status_code == 401
    (line,) = [line for line in plain_log.text.splitlines() if "coffer.access" in line]
    assert re.search(r"INFO coffer\.access: GET /api/org 401 [\d.]+ms request_id=dev-1$", line)


def test_no_secret_reaches_the_logs(app: Flask, auth: Auth, json_log: Captured) -> None:
    """Register, login (right and wrong), tokens, uploads and invites: no password, token,
    CSRF token, invite code, session id or key appears in any line."""
    password = "Tr0ub4dor&3 horse"
    assert auth.register(password=password).status_code == 201
    assert auth.logout().status_code == 200
    assert auth.login(password="wrong password here").status_code == 401
    login = auth.login(password=password)
    assert login.status_code == 200
    token = auth.token()
    bearer = {"Authorization": f"Bearer {token}"}
    assert auth.upload("notes.txt", b"notes\n", headers=bearer).status_code == 201
    assert auth.client.get("/api/tokens", headers=bearer).status_code == 200
    invite = auth.invite()
    joiner = auth.another()
    joined = joiner.register("second@acme.test", "Acme", password=password, invite_code=invite)
    assert joined.status_code == 201
    session_cookie = auth.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert session_cookie is not None

    text = json_log.text
    assert json_log.access(), "the flow was logged"
    for secret in (
        password,
        "Tr0ub4dor",
        token,
        token.removeprefix("coffer_"),
        auth.csrf,
        invite,
        session_cookie.value,
        app.config["SECRET_KEY"],
    ):
        assert secret and secret not in text


def test_share_link_and_webhook_secrets_stay_out_of_the_logs(
    app: Flask, auth: Auth, worker: Callable[[], None], json_log: Captured
) -> None:
    """A share link's secret is in the path of every /s/ request: the access line shows
    `/s/[redacted]`; a webhook's signing secret appears nowhere either."""
    auth.register()
    file_id = auth.upload("notes.txt", b"notes\n").get_json()["file_id"]
    worker()
    url = auth.client.post(
        f"/api/files/{file_id}/links", json={}, headers=auth.headers()
    ).get_json()["url"]
    secret = url.rsplit("/", 1)[1]
    for path, statuses in ((f"/s/{secret}", (200, 302)), (f"/s/{secret}x", (404,))):
        response = app.test_client().get(path)
        response.close()
        assert response.status_code in statuses
    hook = auth.client.post(
        "/api/org/webhooks",
        json={"url": "https://93.184.215.14/hook", "events": ["file.ready"]},
        headers=auth.headers(),
    ).get_json()

    paths = [line["path"] for line in json_log.access()]
    assert paths.count("/s/[redacted]") == 2
    for leaked in (secret, hook["secret"], hook["secret"].removeprefix("whsec_")):
        assert leaked not in json_log.text


def test_invite_and_reset_codes_stay_out_of_the_logs(
    app: Flask, auth: Auth, json_log: Captured
) -> None:
    """An invite link's and a reset link's code are in the path of their pages: the access
    lines show `/join/[redacted]` and `/reset/[redacted]`."""
    auth.register()
    invite = auth.client.post("/api/org/invites", headers=auth.headers()).get_json()
    user_id = auth.client.get("/api/auth/me").get_json()["user_id"]
    reset = auth.client.post(
        f"/api/org/users/{user_id}/password-reset", headers=auth.headers()
    ).get_json()
    reset_code = reset["url"].rsplit("/", 1)[1]
    assert app.test_client().get(f"/join/{invite['invite_code']}").status_code == 200
    assert app.test_client().get(f"/reset/{reset_code}").status_code == 200

    paths = [line["path"] for line in json_log.access()]
    assert "/join/[redacted]" in paths and "/reset/[redacted]" in paths
    for leaked in (invite["invite_code"], reset_code):
        assert leaked not in json_log.text


@pytest.mark.parametrize("json_lines", [True, False], ids=["production", "development"])
def test_secrets_inside_messages_are_redacted(json_lines: bool) -> None:
    """A message or traceback that happens to carry a secret is cleaned before writing."""
    log = logging.getLogger("coffer.test")
    token = "coffer_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
    bcrypt_hash = "$2b$12$" + "abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
    with capture(json_lines) as captured:
        try:
            raise RuntimeError(f"insert failed: password_hash={bcrypt_hash}")
        except RuntimeError:
            log.exception("could not reach postgresql://coffer:hunter2@db:5432/coffer")
        log.warning("request headers: Authorization: Bearer %s", token)
        log.warning("body was %s", {"email": "a@b.test", "password": "hunter3-secret"})

    text = captured.text
    for secret in ("hunter2", "hunter3-secret", token, bcrypt_hash):
        assert secret not in text
    assert "postgresql://coffer:[redacted]@db:5432/coffer" in text
    assert "Bearer [redacted]" in text and "a@b.test" in text
    assert "RuntimeError: insert failed" in text
    if json_lines:
        records = [r for r in captured.records() if r["logger"] == "coffer.test"]
        assert len(records) == 3 and "RuntimeError" in records[0]["exc"]


def test_job_start_end_and_failure_are_logged_with_the_file_id(
    auth: Auth, worker: Callable[[], None], json_log: Captured
) -> None:
    """Each validation logs its start and its end with the file id; a failure says so."""
    assert auth.register().status_code == 201
    good = auth.upload("notes.txt", b"plain text notes\n").get_json()["file_id"]
    bad = auth.upload("photo.png", b"this is not a picture at all\n").get_json()["file_id"]
    worker()

    def lines_for(file_id: str) -> list[dict[str, Any]]:
        return [r for r in json_log.records() if r.get("file_id") == file_id]

    for file_id, outcome in ((good, "ready"), (bad, "failed")):
        messages = [r["message"] for r in lines_for(file_id)]
        assert f"validation of file {file_id} started" in messages
        ended = [r for r in lines_for(file_id) if "ended" in r["message"]]
        assert len(ended) == 1 and ended[0]["status"] == outcome
        assert messages.index(f"validation of file {file_id} started") < messages.index(
            ended[0]["message"]
        )


def test_the_worker_tells_each_job_once_and_keeps_rqs_other_lines(
    app: Flask, auth: Auth, json_log: Captured
) -> None:
    """`manage.py worker`'s log: the job's own start and end, none of RQ's per-job lines
    repeating them, and RQ's lines about the worker itself (what it listens on)."""
    assert auth.register().status_code == 201
    file_id = auth.upload("notes.txt", b"plain text notes\n").get_json()["file_id"]

    run_worker(app, burst=True)

    # What an operator sees at the shipped level (the capture also keeps DEBUG lines).
    messages = [r["message"] for r in json_log.records() if r["level"] != "debug"]
    assert [m for m in messages if file_id in m] == [
        f"validation of file {file_id} started",
        f"validation of file {file_id} ended: ready",
    ]
    assert not [m for m in messages if "Job OK" in m or "Successfully completed" in m]
    assert any("Listening on" in m and "validation" in m for m in messages)


def test_an_unexpected_error_is_logged_with_the_request_id_the_client_saw(
    app: Flask, json_log: Captured
) -> None:
    """The traceback of a 500 carries the id returned to the client, to find it by."""

    def broken() -> str:
        raise RuntimeError("the disk caught fire")

    app.add_url_rule("/broken", view_func=broken)
    response = app.test_client().get("/broken")
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
    request_id = response.headers["X-Request-ID"]
    (error,) = [r for r in json_log.records() if r["level"] == "error"]
    assert error["request_id"] == request_id
    assert "the disk caught fire" in error["exc"]
    (access,) = json_log.access()
    assert (access["request_id"], access["status"]) == (request_id, 500)


# Runs of the characters each pattern repeats, and of the pieces it looks for, long
# enough that a pattern quadratic in them would take minutes (the URL one did).
ADVERSARIAL_LENGTH = 100_000
ADVERSARIAL_PIECES = (
    "a",
    "a:",
    "a.b+c-9",
    "://",
    "a://",
    "a://b:",
    "x://u:p",
    ":",
    "@",
    "/",
    "coffer_",
    "whsec_",
    "/s/",
    "$2b$12$",
    "bearer ",
    "Bearer\t",
    "password",
    "password=",
    'password="',
    "password='",
    "secret: ",
    '"token":',
)


def adversarial_texts() -> Iterator[str]:
    """For each piece: the piece repeated, the piece before a long run of plain letters,
    and the piece after one, each ADVERSARIAL_LENGTH characters long."""
    for piece in ADVERSARIAL_PIECES:
        yield (piece * (ADVERSARIAL_LENGTH // len(piece) + 1))[:ADVERSARIAL_LENGTH]
        yield piece + "a" * (ADVERSARIAL_LENGTH - len(piece))
        yield "a" * (ADVERSARIAL_LENGTH - len(piece)) + piece
        yield "x://u:" + piece * ((ADVERSARIAL_LENGTH - 6) // len(piece))


def test_redaction_takes_linear_time_and_still_redacts() -> None:
    """Every redaction pattern gets through 100,000-character adversarial texts in well
    under a second (the URL pattern took about a minute), and still redacts a password
    inside a URL however long the text around it."""
    for text in adversarial_texts():
        started = time.perf_counter()
        logs.redact(text)
        elapsed = time.perf_counter() - started
        assert elapsed < 0.25, (text[:40], elapsed)

    padding = "a" * ADVERSARIAL_LENGTH
    started = time.perf_counter()
    cleaned = logs.redact(f"/{padding} postgresql://coffer:hunter2@db:5432/coffer {padding}")
    assert time.perf_counter() - started < 0.25
    assert "hunter2" not in cleaned
    assert "postgresql://coffer:[redacted]@db:5432/coffer" in cleaned
    assert logs.redact("9redis://:pw-secret@cache:6379/0") == "9redis://:[redacted]@cache:6379/0"


def test_a_stalled_log_stream_does_not_stall_the_code_that_logs() -> None:
    """With the log stream a pipe nobody reads for a while (a full pipe to a stuck log
    collector), a request thread's log call returns at once, and another thread's too;
    every line is written, redacted, once the reader catches up."""
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w", encoding="utf-8")
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(iter_pipe(read_end)), daemon=True)
    root = logging.getLogger()
    level = root.level
    handler = logs.configure(json_lines=True, level=logging.INFO, stream=stream)
    log = logging.getLogger("coffer.test")
    # More than a pipe holds (64 KiB on Linux): whoever writes it waits for a reader.
    big = "x" * 200_000
    try:
        calls = [
            threading.Thread(target=log.warning, args=("big line %s", big), daemon=True),
            threading.Thread(
                target=log.warning,
                args=("after it: postgresql://coffer:hunter2@db/coffer",),
                daemon=True,
            ),
        ]
        for call in calls:
            call.start()
            call.join(timeout=5)
        assert not any(call.is_alive() for call in calls), "a log call waited on the stream"
    finally:
        # The reader catches up (also when a log call is stuck, so that the test ends).
        reader.start()
        handler.flush()
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)
        stream.close()
        reader.join(timeout=10)
    lines = b"".join(received).decode().splitlines()
    messages = [json.loads(line)["message"] for line in lines]
    assert len(messages) == 2 and messages[0] == f"big line {big}"
    assert messages[1] == "after it: postgresql://coffer:[redacted]@db/coffer"


def iter_pipe(fd: int) -> Iterator[bytes]:
    """Everything read from a pipe until its writer closes it; closes the read end."""
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read1(65536):
            yield chunk
