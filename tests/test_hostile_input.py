"""Hostile input: file names, contents, bodies, ids, numbers and headers chosen by an attacker."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.http import parse_options_header
from werkzeug.test import TestResponse

from app import create_app
from app.extensions import db as _db
from tests.support.client import Auth, part_frame
from tests.support.config import app_config
from tests.support.processes import RedisServer
from tests.support.storage import pending_uploads, stored_objects

BOUNDARY = "CofferBoundary7MA4YWxkTrZu0gW"
SAFE_DISK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MiB = 1024 * 1024


def multipart(disposition: bytes, data: bytes = b"hello\n", *, before: bytes = b"") -> bytes:
    """A multipart body built by hand, byte for byte, with the file part last.

    The test client would encode names itself; an attacker sends whatever bytes they like.
    """
    head, tail = part_frame(b'form-data; name="file"; ' + disposition, BOUNDARY)
    return before + head + data + tail


def post_upload(auth: Auth, body: bytes) -> TestResponse:
    """POST a raw multipart body to the upload endpoint as the logged-in user."""
    return auth.client.post(
        "/api/files/upload",
        data=body,
        headers={**auth.headers(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def upload_named(auth: Auth, raw_name: bytes, data: bytes = b"hello\n") -> TestResponse:
    """Upload with the quoted `filename` parameter set to these exact bytes."""
    return post_upload(auth, multipart(b'filename="' + raw_name + b'"', data))


def upload_rfc5987(auth: Auth, encoded_name: bytes, data: bytes = b"hello\n") -> TestResponse:
    """Upload with a `filename*` (RFC 5987, percent-encoded) parameter."""
    return post_upload(auth, multipart(b'filename="x"; filename*=' + encoded_name, data))


def upload_root(app: Flask) -> Path:
    """UPLOAD_FOLDER."""
    return Path(app.config["UPLOAD_FOLDER"])


def stored_files(app: Flask) -> list[str]:
    """The key of every stored object, in-flight uploads aside, through the backend."""
    return list(stored_objects(app))


def temp_files(app: Flask) -> list[str]:
    """Partial uploads left behind (temp files on local disk, multipart uploads on s3)."""
    return pending_uploads(app)


def copies_of(tmp_path: Path, name: str) -> list[Path]:
    """Every file called `name` anywhere under the test's directory."""
    return [p for p in tmp_path.rglob(name) if p.is_file()]


def assert_stored_in_its_folder(app: Flask, answer: dict[str, Any], organization_id: int) -> Path:
    """The upload is one object at <org>/<file_id>/<safe name>; returns its key as a path."""
    folder = f"{organization_id}/{answer['file_id']}"
    inside = [key for key in stored_files(app) if key.rpartition("/")[0] == folder]
    assert len(inside) == 1, stored_files(app)
    stored = Path(inside[0])
    assert SAFE_DISK_NAME.match(stored.name), stored.name
    assert ".." not in stored.name
    return stored


def assert_json_error(response: TestResponse, status: int, code: str | None = None) -> None:
    """A JSON error of this status (and code)."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"error", "code"}
    if code is not None:
        assert body["code"] == code, body


@pytest.fixture
def org_id(auth: Auth) -> int:
    """Register the admin who uploads; their organization's id."""
    response = auth.register()
    assert response.status_code == 201
    return response.get_json()["organization_id"]


# ---- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        (b"../../etc/passwd", "passwd"),
        (b"/etc/passwd", "passwd"),
        (b"../../../../../../tmp/evil.sh", "evil.sh"),
        (rb"..\\..\\Windows\\System32\\evil.dll", "evil.dll"),
        (rb"C:\\Users\\victim\\evil.txt", "evil.txt"),
        (b"....//....//evil.txt", "evil.txt"),
        (b"uploads/../../app/__init__.py", "__init__.py"),
    ],
)
def test_traversal_and_absolute_names_stay_in_the_file_folder(
    app: Flask, auth: Auth, org_id: int, tmp_path: Path, raw_name: bytes, shown: str
) -> None:
    """A name with path steps is shown as its last part and stored in the file's own folder."""
    response = upload_named(auth, raw_name)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["filename"] == shown
    stored = assert_stored_in_its_folder(app, answer, org_id)
    # Nothing landed beside the app's instance, database or upload folders.
    local = [upload_root(app) / stored] if app.config["STORAGE_BACKEND"] == "local" else []
    assert copies_of(tmp_path, stored.name) == local
    assert auth.client.get(f"/api/files/{answer['file_id']}").get_json()["filename"] == shown


def test_traversal_in_an_rfc5987_name_is_cleaned_too(app: Flask, auth: Auth, org_id: int) -> None:
    """Percent-encoded path steps in `filename*` are decoded and then cut off like any other."""
    response = upload_rfc5987(auth, b"UTF-8''..%2F..%2F..%2Fetc%2Fcron.d%2Fevil")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == "evil"
    assert_stored_in_its_folder(app, response.get_json(), org_id)


@pytest.mark.parametrize("raw_name", [b"..", b".", b"../", b"/", rb"..\\", b"a/b/../.."])
def test_names_that_are_only_path_steps_are_refused(
    app: Flask, auth: Auth, org_id: int, raw_name: bytes
) -> None:
    """Nothing is left of these names once cleaned: 400, and nothing stored."""
    assert_json_error(upload_named(auth, raw_name), 400, "invalid_filename")
    assert stored_files(app) == []


def test_nul_and_control_characters_are_removed_from_names(
    app: Flask, auth: Auth, org_id: int
) -> None:
    """A NUL cannot cut the name short (evil.php\\0.txt) and no control character is kept."""
    response = upload_named(auth, b"evil.php\x00.txt")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == "evil.php.txt"
    assert_stored_in_its_folder(app, response.get_json(), org_id)

    response = upload_named(auth, b"tab\there\x1b[31mred\x7f.txt")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == "tabhere[31mred.txt"


def test_very_long_names_are_cut_to_255_bytes_keeping_the_extension(
    app: Flask, auth: Auth, org_id: int
) -> None:
    """Thousands of bytes of name are cut, on a character boundary, before the extension."""
    response = upload_named(auth, b"a" * 6000 + b".pdf", b"%PDF-1.4\n")
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["filename"]
    assert shown.endswith(".pdf")
    assert len(shown.encode()) == 255
    on_disk = assert_stored_in_its_folder(app, response.get_json(), org_id)
    assert len(on_disk.name) <= 255

    response = upload_named(auth, "é".encode() * 3000 + b".txt")
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["filename"]
    assert shown.endswith(".txt")
    assert set(shown[:-4]) == {"é"}
    assert len(shown.encode()) <= 255
    assert_stored_in_its_folder(app, response.get_json(), org_id)


def test_names_that_are_not_utf8_are_refused_or_made_valid(
    app: Flask, auth: Auth, org_id: int
) -> None:
    """Raw non-UTF-8 bytes make the part unreadable (400, nothing kept); percent-encoded ones
    become replacement characters, and the name on disk is plain ASCII."""
    assert_json_error(upload_named(auth, b"\xff\xfe\xc0\xaf.txt"), 400)
    assert stored_files(app) == []
    assert temp_files(app) == []

    response = upload_rfc5987(auth, b"UTF-8''%FF%FE%C0%AF.txt")
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["filename"]
    assert shown.endswith(".txt")
    assert "\ufffd" in shown
    shown.encode("utf-8")  # valid text
    assert_stored_in_its_folder(app, response.get_json(), org_id)


# ---- active content ------------------------------------------------------------------

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b"<script>alert(document.domain)</script></svg>\n"
)
# A valid GIF header followed by markup: a browser that sniffs could run it as HTML.
GIF_POLYGLOT = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;<html><script>alert(1)</script></html>"


@pytest.mark.parametrize(
    ("name", "data"),
    [("page.html", HTML), ("drawing.svg", SVG), ("cat.gif", GIF_POLYGLOT)],
    ids=["html", "svg-with-script", "gif-html-polyglot"],
)
def test_active_content_is_only_ever_served_as_an_attachment(
    auth: Auth, org_id: int, worker: Callable[[], None], name: str, data: bytes
) -> None:
    """HTML, scripted SVG and a GIF/HTML polyglot download as attachments that the browser
    may neither sniff nor render: nosniff, a CSP that allows nothing and sandboxes, and
    never text/html inline."""
    response = auth.upload(name, data)
    assert response.status_code == 201, response.get_json()
    file_id = response.get_json()["file_id"]
    worker()
    download = auth.client.get(f"/api/files/{file_id}/download")
    assert download.status_code == 200, download.get_json()
    assert download.get_data() == data
    disposition, params = parse_options_header(download.headers["Content-Disposition"])
    assert disposition == "attachment"
    assert params["filename"] == name
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    csp = download.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "sandbox" in csp
    if name != "page.html":
        assert download.mimetype != "text/html"
    download.close()


def test_a_polyglot_named_as_html_is_never_served(
    auth: Auth, org_id: int, worker: Callable[[], None]
) -> None:
    """GIF bytes named .html fail validation, and a failed file cannot be downloaded."""
    file_id = auth.upload("cat.html", GIF_POLYGLOT).get_json()["file_id"]
    worker()
    details = auth.client.get(f"/api/files/{file_id}").get_json()
    assert details["status"] == "failed"
    assert_json_error(auth.client.get(f"/api/files/{file_id}/download"), 409, "not_ready")


# ---- header injection ----------------------------------------------------------------


def test_cr_lf_in_a_filename_never_reaches_the_response_headers(
    auth: Auth, org_id: int, worker: Callable[[], None]
) -> None:
    """A name carrying CR LF and a header line is stored without them; the download has a
    single, well-formed Content-Disposition and no injected header."""
    response = upload_rfc5987(auth, b"UTF-8''a.txt%0D%0AX-Injected%3A%201%0D%0A%0D%0A<html>")
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["filename"]
    assert "\r" not in shown and "\n" not in shown
    worker()
    download = auth.client.get(f"/api/files/{response.get_json()['file_id']}/download")
    assert download.status_code == 200
    assert "X-Injected" not in download.headers
    assert len(download.headers.getlist("Content-Disposition")) == 1
    header = download.headers["Content-Disposition"]
    assert "\r" not in header and "\n" not in header
    disposition, params = parse_options_header(header)
    assert disposition == "attachment"
    assert params["filename"] == shown
    download.close()


def test_a_quote_in_a_filename_cannot_add_a_disposition_parameter(
    auth: Auth, org_id: int, worker: Callable[[], None]
) -> None:
    """`evil.exe"; filename="a.txt` stays one name: the header names exactly the stored one."""
    response = upload_named(auth, rb"evil.exe\"; filename=\"a.txt")
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["filename"]
    worker()
    download = auth.client.get(f"/api/files/{response.get_json()['file_id']}/download")
    assert download.status_code == 200
    disposition, params = parse_options_header(download.headers["Content-Disposition"])
    assert disposition == "attachment"
    assert params["filename"] == shown
    download.close()


# ---- multipart bombs -----------------------------------------------------------------


def test_a_multipart_body_of_thousands_of_parts_is_refused(
    app: Flask, auth: Auth, org_id: int
) -> None:
    """5,000 small fields before the file: 400 too_many_parts, no row, no temp file left."""
    dash = b"--" + BOUNDARY.encode()
    fields = b"".join(
        dash + b'\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % n
        for n in range(5000)
    )
    assert_json_error(
        post_upload(auth, multipart(b'filename="a.txt"', before=fields)), 400, "too_many_parts"
    )
    assert stored_files(app) == []
    assert temp_files(app) == []
    assert auth.client.get("/api/files").get_json()["total"] == 0


def test_a_huge_part_header_is_refused(app: Flask, auth: Auth, org_id: int) -> None:
    """A part header of 1 MiB (here, the file name): 413 JSON, nothing stored."""
    response = upload_named(auth, b"x" * MiB + b".txt")
    assert_json_error(response, 413)
    assert stored_files(app) == []
    assert temp_files(app) == []


# ---- JSON bodies ---------------------------------------------------------------------

JSON_ENDPOINTS = ["/api/auth/register", "/api/auth/login", "/api/tokens"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        b'{"email": ',
        b"{'email': 'single@quotes.test'}",
        b"not json at all",
        b"[1, 2, 3]",
        b'"a string"',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
    ids=["truncated", "single-quotes", "text", "array", "string", "bad-utf8", "deep-list", "deep"],
)
def test_malformed_json_is_a_400(
    client: FlaskClient, auth: Auth, org_id: int, path: str, body: bytes
) -> None:
    """A body that is not one JSON object gets 400 invalid_json, however it is broken."""
    response = client.post(
        path, data=body, headers={**auth.headers(), "Content-Type": "application/json"}
    )
    assert_json_error(response, 400, "invalid_json")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_oversized_json_bodies_get_413_json(
    client: FlaskClient, auth: Auth, org_id: int, path: str
) -> None:
    """A JSON body over 1 MiB is refused with 413 in the JSON error shape."""
    body = b'{"email": "' + b"a" * (2 * MiB) + b'@coffer.test", "password": "x"}'
    response = client.post(
        path, data=body, headers={**auth.headers(), "Content-Type": "application/json"}
    )
    assert_json_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/auth/register", "email"),
        ("/api/auth/register", "organization_name"),
        ("/api/auth/login", "email"),
        ("/api/tokens", "name"),
    ],
)
def test_nul_bytes_in_json_fields_are_refused(
    client: FlaskClient, auth: Auth, org_id: int, path: str, field: str
) -> None:
    """A NUL inside a JSON string is a 400 naming the field, never a database error."""
    body = {
        "email": "new@coffer.test",
        "password": "long enough password",
        "organization_name": "Nul Org",
        "name": "a token",
    }
    body[field] = body[field][:3] + "\x00" + body[field][3:]
    response = client.post(path, json=body, headers=auth.headers())
    assert_json_error(response, 400, "invalid_field")
    assert response.get_json()["field"] == field


# ---- ids and numbers -----------------------------------------------------------------

BAD_FILE_IDS = [
    "not-a-uuid",
    "00000000-0000-4000-8000-00000000000g",
    "00000000-0000-4000-8000-0000000000000",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "%27%20OR%201%3D1%20--",
    "x" * 5000,
    "%F0%9F%92%A5",
]


@pytest.mark.parametrize("file_id", BAD_FILE_IDS)
def test_malformed_file_ids_are_404(
    client: FlaskClient, auth: Auth, org_id: int, file_id: str
) -> None:
    """Details, download and delete of a malformed id all answer 404 JSON."""
    assert auth.upload("real.txt", b"a real file\n").status_code == 201
    assert_json_error(client.get(f"/api/files/{file_id}"), 404, "not_found")
    assert_json_error(client.get(f"/api/files/{file_id}/download"), 404, "not_found")
    assert_json_error(
        client.delete(f"/api/files/{file_id}", headers=auth.headers()), 404, "not_found"
    )
    assert client.get("/api/files").get_json()["total"] == 1


@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648", "-1", "1e3", "0x10"])
def test_out_of_range_user_and_token_ids_are_404(
    client: FlaskClient, auth: Auth, org_id: int, number: str
) -> None:
    """An id no 32-bit column can hold (or not a number at all) is simply not found."""
    for method, path in [
        ("POST", f"/api/org/users/{number}/deactivate"),
        ("POST", f"/api/org/users/{number}/activate"),
        ("DELETE", f"/api/tokens/{number}"),
    ]:
        response = client.open(path, method=method, headers=auth.headers())
        assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cursor", "not-a-cursor"),
        ("cursor", "%00"),
        ("cursor", "A" * 5000),
        ("cursor", "MjAyNi0wMS0wMVQwMDowMDowMHwuLi8uLi9ldGMvcGFzc3dk"),  # time|../../etc/passwd
        ("status", "ready' OR '1'='1"),
        ("status", "READY"),
    ],
)
def test_forged_cursors_and_statuses_are_400(
    client: FlaskClient, org_id: int, name: str, value: str
) -> None:
    """A cursor Coffer did not issue, or an unknown status, is a 400 naming it."""
    response = client.get("/api/files", query_string={name: value})
    assert_json_error(response, 400, "invalid_parameter")
    assert response.get_json()["field"] == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page", "-1"),
        ("page", "0"),
        ("page", "10000001"),
        ("page", "1" + "0" * 40),
        ("page", "abc"),
        ("page", "1.5"),
        ("page", "1e3"),
        ("page", "0x10"),
        ("page", "NaN"),
        ("limit", "0"),
        ("limit", "-5"),
        ("limit", "101"),
        ("limit", "9" * 400),
        ("limit", "ten"),
        ("limit", "Infinity"),
    ],
)
def test_bad_page_and_limit_numbers_are_400(
    client: FlaskClient, org_id: int, name: str, value: str
) -> None:
    """Negative, zero, huge and non-numeric page/limit: 400 naming the parameter."""
    response = client.get("/api/files", query_string={name: value})
    assert_json_error(response, 400, "invalid_parameter")
    assert response.get_json()["field"] == name


# ---- request ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    ["a" * 10_000, "<script>alert(1)</script>", "id with spaces", "../../etc", "é" * 20],
)
def test_absurd_request_ids_are_replaced(client: FlaskClient, sent: str) -> None:
    """An X-Request-ID too long or with odd characters is not echoed: a fresh id is."""
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    assert response.status_code == 200
    returned = response.headers["X-Request-ID"]
    assert returned != sent
    assert re.fullmatch(r"[0-9a-f]{32}", returned)


def test_a_well_formed_request_id_is_kept(client: FlaskClient) -> None:
    """A sane X-Request-ID comes back unchanged, so logs can be joined across services."""
    response = client.get("/healthz", headers={"X-Request-ID": "req-2026.11:abc_1"})
    assert response.headers["X-Request-ID"] == "req-2026.11:abc_1"


# ---- cookies and transport security per environment -----------------------------------


def session_cookie(response: TestResponse) -> str:
    """The Set-Cookie header of the session cookie."""
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("coffer_session=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def cookie_flags(header: str) -> set[str]:
    """The lower-cased attribute names and name=value pairs of a Set-Cookie header."""
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_session_cookie_outside_production_is_httponly_and_lax(auth: Auth) -> None:
    """Development and test builds: HttpOnly and SameSite=Lax, not Secure (plain HTTP
    works locally), and no HSTS."""
    response = auth.register()
    flags = cookie_flags(session_cookie(response))
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags
    assert "Strict-Transport-Security" not in response.headers


@pytest.fixture
def production_app(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    migrated_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> Iterator[Flask]:
    """An app built with APP_ENV=production on the test's database and Redis.

    Depends on `app` so the rows it writes are cleared the same way; the root logger,
    which a production app points at stderr, is put back afterwards.
    """
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "production-test-secret-" + "x" * 40)
    monkeypatch.setenv("PUBLIC_URL", "https://files.example.com")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    prod = create_app(app_config(migrated_database, redis_server.url, tmp_path / "prod"))
    yield prod
    with prod.app_context():
        _db.session.remove()
        _db.engine.dispose()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_production_cookies_are_secure_and_hsts_is_sent(production_app: Flask) -> None:
    """APP_ENV=production: the session cookie is Secure, HttpOnly, SameSite=Lax, and every
    answer carries Strict-Transport-Security."""
    assert production_app.config["APP_ENV"] == "production"
    client = production_app.test_client()
    response = client.post(
        "/api/auth/register",
        json={"email": "ops@prod.test", "password": Auth.password, "organization_name": "Prod"},
    )
    assert response.status_code == 201, response.get_json()
    flags = cookie_flags(session_cookie(response))
    assert {"secure", "httponly", "samesite=lax"} <= flags
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    health = client.get("/healthz")
    assert "max-age=" in health.headers["Strict-Transport-Security"]
