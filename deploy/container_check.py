"""Data kept across containers, for deploy/container-test.sh: standard library only.

`container_check.py put BASE_URL STATE` registers a user, makes an API token, uploads a
file, waits until it is ready and writes what it made to the JSON file STATE.
`container_check.py check BASE_URL STATE`, run against a new container on the same
volume (and database), logs in again and downloads the same bytes with the same token.
Exits 1 with one line saying what differed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

READY_TIMEOUT_SECONDS = 60


class Failure(Exception):
    """A step that did not do what it should."""


class Session:
    """HTTP calls against one Coffer with a cookie jar of their own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request; the status and body, whatever the status."""
        request = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def json(self, method: str, path: str, payload: Any, **headers: str) -> tuple[int, Any]:
        """A JSON request; the status and decoded body."""
        status, body = self.call(
            method,
            path,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **headers},
        )
        return status, json.loads(body or b"null")


def expect(what: str, status: int, wanted: int, body: Any = None) -> None:
    """Fail with `what` when the status is not the one wanted."""
    if status != wanted:
        raise Failure(f"{what}: expected HTTP {wanted}, got {status}: {str(body)[:300]}")


def login(session: Session, email: str, password: str) -> str:
    """Log in; the CSRF token."""
    status, body = session.json("POST", "/api/auth/login", {"email": email, "password": password})
    expect("login", status, 200, body)
    return str(body["csrf_token"])


def put(base_url: str, state: Path) -> None:
    """Register, make a token, upload a file and wait until it is ready."""
    session = Session(base_url)
    email = f"keep-{secrets.token_hex(4)}@container.test"
    password = secrets.token_urlsafe(18)
    status, body = session.json(
        "POST",
        "/api/auth/register",
        {"email": email, "password": password, "organization_name": f"Keep {email}"},
    )
    expect("register", status, 201, body)
    csrf = login(session, email, password)
    status, body = session.json(
        "POST", "/api/tokens", {"name": "container"}, **{"X-CSRF-Token": csrf}
    )
    expect("make an API token", status, 201, body)
    token = str(body["token"])
    data = b"kept across containers\n" + os.urandom(200_000)
    boundary = secrets.token_hex(16)
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="kept.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    bearer = {"Authorization": f"Bearer {token}"}
    status, raw = session.call(
        "POST",
        "/api/files/upload",
        form,
        {"Content-Type": f"multipart/form-data; boundary={boundary}", **bearer},
    )
    expect("upload", status, 201, raw)
    file_id = json.loads(raw)["file_id"]
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        status, raw = session.call("GET", f"/api/files/{file_id}", headers=bearer)
        expect("file details", status, 200, raw)
        details = json.loads(raw)
        if details["status"] == "ready":
            break
        if details["status"] == "failed" or time.monotonic() > deadline:
            raise Failure(f"the upload is {details['status']}, not ready: are the workers up?")
        time.sleep(0.5)
    if details["sha256"] != hashlib.sha256(data).hexdigest():
        raise Failure("the ready file's sha256 is not the upload's")
    state.write_text(
        json.dumps(
            {
                "email": email,
                "password": password,
                "token": token,
                "file_id": file_id,
                "sha256": details["sha256"],
            }
        )
    )
    print(f"ok   upload {file_id} is ready")


def check(base_url: str, state: Path) -> None:
    """Log in again and download the same bytes with the same token."""
    kept = json.loads(state.read_text())
    session = Session(base_url)
    login(session, kept["email"], kept["password"])
    status, raw = session.call(
        "GET",
        f"/api/files/{kept['file_id']}/download",
        headers={"Authorization": f"Bearer {kept['token']}"},
    )
    expect("download of the kept file", status, 200, raw[:300])
    if hashlib.sha256(raw).hexdigest() != kept["sha256"]:
        raise Failure("the kept file's bytes differ from the upload")
    print(f"ok   {kept['email']} logs in and {kept['file_id']} downloads unchanged")


def main(argv: list[str]) -> int:
    """put or check, against BASE_URL, with STATE."""
    if len(argv) != 3 or argv[0] not in {"put", "check"}:
        print("usage: container_check.py put|check BASE_URL STATE", file=sys.stderr)
        return 2
    action, base_url, state = argv
    try:
        (put if action == "put" else check)(base_url, Path(state))
    except (Failure, OSError, ValueError, KeyError) as exc:
        print(f"FAIL [{action}]: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
