"""The API as the tests call it: an Auth helper for Flask test clients, the usage of an
organization, and multipart bodies built by hand."""

from __future__ import annotations

import mimetypes
import re
import uuid
from typing import Any

from flask import Flask
from flask.testing import FlaskClient


class Auth:
    """Registers and logs in users through the API, remembering each one's CSRF token."""

    password = "correct horse battery"

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client
        self.csrf: str | None = None

    def register(
        self,
        email: str = "admin@acme.test",
        organization_name: str = "Acme",
        password: str | None = None,
        invite_code: str | None = None,
        client: FlaskClient | None = None,
    ) -> Any:
        """POST /api/auth/register; keeps the CSRF token of a success."""
        body = {
            "email": email,
            "password": password or self.password,
            "organization_name": organization_name,
        }
        if invite_code is not None:
            body["invite_code"] = invite_code
        response = (client or self.client).post("/api/auth/register", json=body)
        if response.status_code == 201 and client is None:
            self.csrf = response.get_json()["csrf_token"]
        return response

    def login(self, email: str = "admin@acme.test", password: str | None = None) -> Any:
        """POST /api/auth/login; keeps the CSRF token of a success."""
        response = self.client.post(
            "/api/auth/login", json={"email": email, "password": password or self.password}
        )
        if response.status_code == 200:
            self.csrf = response.get_json()["csrf_token"]
        return response

    def headers(self) -> dict[str, str]:
        """The CSRF header for cookie-authenticated writes."""
        return {"X-CSRF-Token": self.csrf or ""}

    def logout(self) -> Any:
        """POST /api/auth/logout with the CSRF token."""
        return self.client.post("/api/auth/logout", headers=self.headers())

    def invite(self) -> str:
        """Issue an invite code as the logged-in admin."""
        response = self.client.post("/api/org/invites", headers=self.headers())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["invite_code"]

    def token(self, name: str = "script") -> str:
        """Create an API token as the logged-in user and return its secret."""
        response = self.client.post("/api/tokens", json={"name": name}, headers=self.headers())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["token"]

    def upload(self, filename: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
        """POST /api/files/upload as multipart field `file` (cookie + CSRF by default).

        The body is framed as browsers, curl and requests frame it; Flask's test client
        leaves out an empty part's blank line, which the upload parser reads as malformed.
        """
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        body, header = multipart(filename, data, content_type)
        return self.client.post(
            "/api/files/upload",
            data=body,
            headers=self.headers() if headers is None else headers,
            content_type=header,
        )

    def another(self) -> Auth:
        """An Auth with a fresh client (its own cookies) on the same app."""
        return Auth(self.app, self.app.test_client())


def form_token(client: FlaskClient, path: str) -> str:
    """The CSRF token a page's forms carry."""
    with client.get(path) as page:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, f"{path} has no form token"
    return found.group(1)


def usage(user: Auth | FlaskClient, headers: dict[str, str] | None = None) -> tuple[int, int]:
    """(used_bytes, file_count) of the caller's organization."""
    client = user.client if isinstance(user, Auth) else user
    body = client.get("/api/org", headers=headers or {}).get_json()
    return body["used_bytes"], body["file_count"]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of an API token."""
    return {"Authorization": f"Bearer {token}"}


def arabic_indic(number: int) -> str:
    """A number in Arabic-Indic digits, which int() and a `\\d` pattern read as 0-9."""
    digits = "".join(chr(code) for code in range(0x660, 0x66A))
    return str(number).translate(str.maketrans("0123456789", digits))


# ---- multipart bodies ----------------------------------------------------------------


def part_frame(
    disposition: bytes, boundary: str, content_type: str = "application/octet-stream"
) -> tuple[bytes, bytes]:
    """(bytes before the data, bytes after it) of a one-part multipart/form-data body whose
    part has exactly this Content-Disposition, byte for byte."""
    dash = b"--" + boundary.encode()
    head = (
        dash
        + b"\r\nContent-Disposition: "
        + disposition
        + b"\r\nContent-Type: "
        + content_type.encode()
        + b"\r\n\r\n"
    )
    return head, b"\r\n" + dash + b"--\r\n"


def multipart_frame(
    filename: str, content_type: str = "application/octet-stream", boundary: str | None = None
) -> tuple[str, bytes, bytes]:
    """(Content-Type header, bytes before the file, bytes after it) of a one-file upload
    as field `file`, for a body sent in pieces."""
    boundary = boundary or uuid.uuid4().hex
    disposition = f'form-data; name="file"; filename="{filename}"'.encode()
    head, tail = part_frame(disposition, boundary, content_type)
    return f"multipart/form-data; boundary={boundary}", head, tail


def multipart(
    filename: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    fields: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """A multipart/form-data body with `data` as field `file` (after any other `fields`),
    and its Content-Type header.

    Built here rather than by Flask's test client, whose encoder spools bodies over 500 KiB
    to a temporary file that nothing closes.
    """
    boundary = uuid.uuid4().hex
    header, head, tail = multipart_frame(filename, content_type, boundary)
    before = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    )
    return before + head + data + tail, header


def tokens_of_two_organizations(auth: Auth) -> list[str]:
    """API tokens of the admins of two new organizations, Acme and Globex."""
    tokens = []
    for email, organization in (("admin@acme.test", "Acme"), ("admin@globex.test", "Globex")):
        person = auth.another()
        assert person.register(email=email, organization_name=organization).status_code == 201
        tokens.append(person.token())
    return tokens
