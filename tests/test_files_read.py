"""Reading files: the listing, one file's details and the download."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import uuid
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update
from werkzeug.http import parse_options_header

from app.models import File
from tests.support.client import Auth
from tests.support.database import run_sql

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def png_bytes() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def upload(auth: Auth, filename: str, data: bytes) -> str:
    """Upload a file and return its id."""
    response = auth.upload(filename, data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["file_id"]


def listing(auth: Auth, query: str = "") -> dict[str, Any]:
    """GET /api/files with a query string, asserting success."""
    response = auth.client.get(f"/api/files{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body: dict[str, Any]) -> list[str]:
    """The file ids of a listing, in order."""
    return [f["id"] for f in body["files"]]


@pytest.fixture
def outsider(app: Flask) -> Auth:
    """An admin of another organization, logged in on their own client."""
    other = Auth(app, app.test_client())
    assert other.register(email="eve@other.test", organization_name="Other").status_code == 201
    return other


# ---- listing -------------------------------------------------------------------------


def test_list_is_newest_first_with_sub_second_times(app: Flask, auth: Auth) -> None:
    auth.register()
    uploaded = [upload(auth, f"f{n}.txt", b"x" * (n + 1)) for n in range(4)]

    body = listing(auth)

    assert ids(body) == list(reversed(uploaded))
    stamps = [f["uploaded_at"] for f in body["files"]]
    assert all(TIMESTAMP_RE.match(s) for s in stamps), stamps
    # Uploads a few milliseconds apart still get distinct, ordered times.
    assert len(set(stamps)) == 4
    assert stamps == sorted(stamps, reverse=True)
    first = body["files"][-1]
    assert first == {
        "id": uploaded[0],
        "filename": "f0.txt",
        "size": 1,
        "mime_type": None,
        "status": "pending",
        "uploaded_at": first["uploaded_at"],
        "uploaded_by_email": "admin@acme.test",
        "folder_id": "root",
        "uploaded_via_request": None,
        "preview": False,
    }
    assert (body["total"], body["page"], body["limit"], body["pages"]) == (4, 1, 20, 1)


def test_list_breaks_time_ties_by_id(app: Flask, auth: Auth) -> None:
    auth.register()
    uploaded = [upload(auth, f"f{n}.txt", b"data") for n in range(5)]
    same_time = datetime(2030, 1, 2, 3, 4, 5, 678901)
    run_sql(app, update(File).where(File.id.in_(uploaded)).values(uploaded_at=same_time))

    body = listing(auth)

    assert ids(body) == sorted(uploaded, reverse=True)
    assert {f["uploaded_at"] for f in body["files"]} == {"2030-01-02T03:04:05.678901Z"}
    # Pages cut inside the tie neither repeat nor skip a file.
    paged = ids(listing(auth, "?limit=2")) + ids(listing(auth, "?limit=2&page=2"))
    paged += ids(listing(auth, "?limit=2&page=3"))
    assert paged == sorted(uploaded, reverse=True)


def test_list_pagination_fields(app: Flask, auth: Auth) -> None:
    auth.register()
    uploaded = [upload(auth, f"f{n}.txt", b"data") for n in range(5)]
    newest_first = list(reversed(uploaded))

    pages = [listing(auth, f"?limit=2&page={n}") for n in (1, 2, 3, 4)]

    assert [ids(p) for p in pages] == [newest_first[0:2], newest_first[2:4], newest_first[4:], []]
    for number, page in enumerate(pages, start=1):
        assert (page["total"], page["page"], page["limit"], page["pages"]) == (5, number, 2, 3)


def test_list_of_an_empty_organization(app: Flask, auth: Auth) -> None:
    auth.register()
    body = listing(auth)

    assert body["files"] == []
    assert (body["total"], body["pages"]) == (0, 0)
    assert body["next_cursor"] is None


def totals_by_status(auth: Auth) -> dict[str, int]:
    """Each status's `total` as `?status=` gives it; asserts it equals the rows listed."""
    rows = listing(auth, "?limit=100")["files"]
    totals = {}
    for status in ("pending", "processing", "ready", "failed"):
        body = listing(auth, f"?status={status}&limit=100")
        assert body["total"] == len(body["files"]) == sum(f["status"] == status for f in rows)
        totals[status] = body["total"]
    return totals


def test_status_totals_follow_every_upload_move_and_delete(
    app: Flask, auth: Auth, outsider: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    upload(outsider, "theirs.txt", b"another tenant's file\n")
    ok = upload(auth, "ok.txt", b"plain text\n")
    fake = upload(auth, "fake.png", b"not an image at all\n")
    upload(auth, "two.txt", b"more text\n")
    assert totals_by_status(auth) == {"pending": 3, "processing": 0, "ready": 0, "failed": 0}

    worker()
    assert totals_by_status(auth) == {"pending": 0, "processing": 0, "ready": 2, "failed": 1}
    assert totals_by_status(outsider)["ready"] == 1

    later = upload(auth, "later.txt", b"later\n")
    # A status changed by hand (an operator's SQL) counts as well as the job's moves.
    run_sql(app, update(File).where(File.id == later).values(status="processing"))
    assert totals_by_status(auth) == {"pending": 0, "processing": 1, "ready": 2, "failed": 1}

    for file_id in (ok, fake):
        assert (
            auth.client.delete(f"/api/files/{file_id}", headers=auth.headers()).status_code == 204
        )
    assert totals_by_status(auth) == {"pending": 0, "processing": 1, "ready": 1, "failed": 0}
    assert totals_by_status(outsider) == {"pending": 0, "processing": 0, "ready": 1, "failed": 0}


def test_list_filters_by_status(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    ready = upload(auth, "ok.txt", b"plain text\n")
    failed = upload(auth, "fake.png", b"not an image at all\n")
    worker()
    pending = upload(auth, "later.txt", b"later\n")

    by_status = {s: listing(auth, f"?status={s}") for s in ("pending", "ready", "failed")}

    assert ids(by_status["ready"]) == [ready]
    assert ids(by_status["failed"]) == [failed]
    assert ids(by_status["pending"]) == [pending]
    assert [by_status[s]["total"] for s in ("pending", "ready", "failed")] == [1, 1, 1]
    assert listing(auth, "?status=processing")["files"] == []
    assert listing(auth, "?status=")["total"] == 3
    assert by_status["ready"]["files"][0]["mime_type"] == "text/plain"


def test_list_shows_each_uploaders_email(app: Flask, auth: Auth) -> None:
    auth.register()
    code = auth.invite()
    member = auth.another()
    assert member.register("mia@acme.test", "Acme", invite_code=code).status_code == 201
    mine = upload(auth, "admin.txt", b"a")
    theirs = upload(member, "member.txt", b"b")

    emails = {f["id"]: f["uploaded_by_email"] for f in listing(member)["files"]}

    assert emails == {mine: "admin@acme.test", theirs: "mia@acme.test"}


def test_list_never_shows_another_tenants_files(app: Flask, auth: Auth, outsider: Auth) -> None:
    auth.register()
    mine = upload(auth, "mine.txt", b"mine")
    upload(outsider, "theirs.txt", b"theirs")

    body = listing(auth)

    assert ids(body) == [mine]
    assert body["total"] == 1


def test_cursor_walks_every_file_exactly_once(app: Flask, auth: Auth) -> None:
    auth.register()
    uploaded = [upload(auth, f"f{n}.txt", b"data") for n in range(7)]
    # Three share one time, so the walk crosses a tie.
    tied = datetime(2030, 5, 6, 7, 8, 9, 123456)
    run_sql(app, update(File).where(File.id.in_(uploaded[2:5])).values(uploaded_at=tied))
    expected = ids(listing(auth, "?limit=100"))

    seen: list[str] = []
    body = listing(auth, "?limit=3")
    pages = 1
    while True:
        seen += ids(body)
        if body["next_cursor"] is None:
            break
        body = listing(auth, f"?limit=3&cursor={body['next_cursor']}")
        pages += 1

    assert seen == expected
    assert sorted(seen) == sorted(uploaded)
    assert pages == 3


def test_cursor_with_a_status_filter(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    ready = [upload(auth, f"r{n}.txt", b"text\n") for n in range(3)]
    worker()
    upload(auth, "pending.txt", b"text\n")

    first = listing(auth, "?status=ready&limit=2")
    second = listing(auth, f"?status=ready&limit=2&cursor={first['next_cursor']}")

    assert ids(first) + ids(second) == list(reversed(ready))
    assert second["next_cursor"] is None


def garbage_cursors() -> list[str]:
    """Cursors that are not ones Coffer issued."""

    def b64(text: bytes) -> str:
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    return [
        "garbage",
        "!!!",
        "é",
        b64(b"yesterday|" + str(uuid.uuid4()).encode()),
        b64(b"2030-01-01T00:00:00|not-a-uuid"),
        b64(b"\xff\xfe\xfd"),
        "a",
    ]


# Numbers int() would take that are not plain ASCII digits: "1_0", " 2", "+3" and the
# Arabic-Indic three "\u0663", sent percent-encoded.
NOT_PLAIN_DIGITS = ["1_0", "%202", "2%20", "%2B3", "%D9%A3"]


@pytest.mark.parametrize(
    "query",
    [
        "?page=0",
        "?page=-1",
        "?page=abc",
        "?page=1.5",
        "?limit=0",
        "?limit=101",
        "?limit=-5",
        "?limit=ten",
        # Only plain ASCII digits are numbers: no underscores, spaces, signs or other scripts.
        *[f"?{name}={raw}" for name in ("page", "limit") for raw in NOT_PLAIN_DIGITS],
        "?status=done",
        "?status=READY",
        *[f"?cursor={c}" for c in garbage_cursors()],
    ],
)
def test_list_rejects_bad_parameters(app: Flask, auth: Auth, query: str) -> None:
    auth.register()
    upload(auth, "a.txt", b"a")

    response = auth.client.get(f"/api/files{query}")

    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_parameter"
    assert body["field"] == query[1:].split("=")[0]


def test_limit_bounds_are_inclusive(app: Flask, auth: Auth) -> None:
    auth.register()
    upload(auth, "a.txt", b"a")

    assert listing(auth, "?limit=1")["limit"] == 1
    assert listing(auth, "?limit=100")["limit"] == 100


def test_page_bounds_are_inclusive(app: Flask, auth: Auth) -> None:
    auth.register()
    upload(auth, "a.txt", b"a")

    assert listing(auth, "?page=10000000")["page"] == 10_000_000
    response = auth.client.get("/api/files?page=10000001")
    assert response.status_code == 400
    assert response.get_json()["field"] == "page"


def test_a_number_may_have_leading_zeros(app: Flask, auth: Auth) -> None:
    auth.register()
    upload(auth, "a.txt", b"a")

    body = listing(auth, "?page=01&limit=007")

    assert (body["page"], body["limit"]) == (1, 7)


def test_list_needs_authentication(app: Flask, client: Any) -> None:
    response = client.get("/api/files")

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


# ---- details -------------------------------------------------------------------------


def test_details_of_a_validated_file(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    data = b"details of a file\n"
    file_id = upload(auth, "notes.txt", data)
    worker()

    body = auth.client.get(f"/api/files/{file_id}").get_json()

    assert set(body) == {
        "id",
        "filename",
        "size",
        "mime_type",
        "sha256",
        "status",
        "error_message",
        "uploaded_at",
        "processed_at",
        "uploaded_by_email",
        "folder_id",
        "path",
        "version",
        "uploaded_via_request",
        "preview",
    }
    assert body["id"] == file_id
    assert body["uploaded_via_request"] is None
    assert (body["folder_id"], body["path"], body["version"]) == ("root", "/notes.txt", 1)
    assert body["filename"] == "notes.txt"
    assert body["size"] == len(data)
    assert body["mime_type"] == "text/plain"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["status"] == "ready"
    assert body["error_message"] is None
    assert body["uploaded_by_email"] == "admin@acme.test"
    assert TIMESTAMP_RE.match(body["uploaded_at"])
    assert TIMESTAMP_RE.match(body["processed_at"])
    assert body["processed_at"] >= body["uploaded_at"]


def test_details_of_a_failed_file_say_why(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "photo.png", b"just words\n")
    worker()

    body = auth.client.get(f"/api/files/{file_id}").get_json()

    assert body["status"] == "failed"
    assert body["error_message"] == "content is text/plain but .png expects image/png"
    assert TIMESTAMP_RE.match(body["processed_at"])


@pytest.mark.parametrize(
    "file_id",
    [str(uuid.uuid4()), "not-a-uuid", "123", "0" * 36, "%2e%2e", "..%2f..%2fetc%2fpasswd"],
)
def test_unknown_or_malformed_ids_are_404(app: Flask, auth: Auth, file_id: str) -> None:
    auth.register()
    upload(auth, "a.txt", b"a")

    for response in (
        auth.client.get(f"/api/files/{file_id}"),
        auth.client.get(f"/api/files/{file_id}/download"),
        auth.client.delete(f"/api/files/{file_id}", headers=auth.headers()),
    ):
        with response:
            assert response.status_code == 404
            assert response.get_json()["code"] == "not_found"


def test_another_tenants_file_is_404_everywhere(
    app: Flask, auth: Auth, outsider: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "secret.txt", b"tenant secret\n")
    worker()
    unknown = str(uuid.uuid4())

    for target in (file_id, unknown):
        details = outsider.client.get(f"/api/files/{target}")
        with outsider.client.get(f"/api/files/{target}/download") as download:
            assert download.status_code == 404
            assert download.get_json() == {"error": "file not found", "code": "not_found"}
        delete = outsider.client.delete(f"/api/files/{target}", headers=outsider.headers())
        # Indistinguishable from a file that does not exist.
        assert details.status_code == delete.status_code == 404
        assert details.get_json() == delete.get_json() == download.get_json()

    assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"
    with auth.client.get(f"/api/files/{file_id}/download") as response:
        assert response.data == b"tenant secret\n"


# ---- download ------------------------------------------------------------------------


def test_download_gives_the_exact_bytes_and_headers(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    data = bytes(range(256)) * 3 + b"tail"
    text = b"hello\nworld\n"
    binary_id = upload(auth, "blob.bin", data)
    text_id = upload(auth, "notes.txt", text)
    worker()

    with auth.client.get(f"/api/files/{binary_id}/download") as response:
        assert response.status_code == 200
        assert response.data == data
        assert response.headers["Content-Length"] == str(len(data))
        assert response.mimetype == "application/octet-stream"
        assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        disposition, options = parse_options_header(response.headers["Content-Disposition"])
        assert (disposition, options["filename"]) == ("attachment", "blob.bin")
    with auth.client.get(f"/api/files/{text_id}/download") as response:
        assert response.data == text
        assert response.mimetype == "text/plain"
        assert response.headers["Content-Length"] == str(len(text))


def test_download_of_a_png_has_its_type(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    data = png_bytes()
    file_id = upload(auth, "pixel.png", data)
    worker()

    with auth.client.get(f"/api/files/{file_id}/download") as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.data == data


def test_download_name_with_non_ascii_uses_filename_star(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "résumé 2024.txt", b"cv\n")
    worker()

    with auth.client.get(f"/api/files/{file_id}/download") as response:
        header = response.headers["Content-Disposition"]
    assert header.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%202024.txt" in header
    # The plain filename= fallback stays ASCII for old clients.
    assert header.isascii()
    assert parse_options_header(header)[1]["filename"] == "résumé 2024.txt"


def test_download_range_gives_206_with_the_slice(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    data = b"0123456789abcdefghij"
    file_id = upload(auth, "digits.txt", data)
    worker()

    with auth.client.get(
        f"/api/files/{file_id}/download", headers={"Range": "bytes=5-9"}
    ) as response:
        assert response.status_code == 206
        assert response.data == b"56789"
        assert response.headers["Content-Range"] == f"bytes 5-9/{len(data)}"
        assert response.headers["Content-Length"] == "5"
    with auth.client.get(
        f"/api/files/{file_id}/download", headers={"Range": "bytes=-4"}
    ) as response:
        assert response.status_code == 206
        assert response.data == b"ghij"


@pytest.mark.parametrize(
    "header", ["", "   ", "bytes=", "bytes=9-5", "bytes=a-b", "pages=0-1", "bytes=0-1,4-5"]
)
def test_download_ignores_an_empty_or_malformed_range(
    app: Flask, auth: Auth, worker: Callable[[], None], header: str
) -> None:
    """A Range that does not parse, names another unit or asks for several ranges is ignored
    (RFC 9110 14.2): 200 with the whole file, never 416."""
    auth.register()
    data = b"0123456789abcdefghij"
    file_id = upload(auth, "digits.txt", data)
    worker()

    with auth.client.get(f"/api/files/{file_id}/download", headers={"Range": header}) as response:
        assert response.status_code == 200
        assert response.data == data
        assert "Content-Range" not in response.headers


def test_download_range_past_the_end_is_416(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """A well-formed range that starts past the end is 416 with the file's length; a suffix
    longer than the file is the whole file (206)."""
    auth.register()
    data = b"0123456789abcdefghij"
    file_id = upload(auth, "digits.txt", data)
    worker()

    for header in ("bytes=20-", "bytes=100-200"):
        with auth.client.get(
            f"/api/files/{file_id}/download", headers={"Range": header}
        ) as response:
            assert response.status_code == 416, header
            assert response.get_json()["code"] == "range_not_satisfiable"
            assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    with auth.client.get(
        f"/api/files/{file_id}/download", headers={"Range": "bytes=-644"}
    ) as response:
        assert response.status_code == 206
        assert response.data == data
        assert response.headers["Content-Range"] == f"bytes 0-19/{len(data)}"


def test_download_if_none_match_gives_304(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "cached.txt", b"cache me\n")
    worker()
    with auth.client.get(f"/api/files/{file_id}/download") as first:
        etag = first.headers["ETag"]

    with auth.client.get(
        f"/api/files/{file_id}/download", headers={"If-None-Match": etag}
    ) as response:
        assert response.status_code == 304
        assert response.data == b""
        assert response.headers["ETag"] == etag
    with auth.client.get(
        f"/api/files/{file_id}/download", headers={"If-None-Match": '"something-else"'}
    ) as response:
        assert response.status_code == 200
        assert response.data == b"cache me\n"


def test_download_while_pending_is_409_not_ready(app: Flask, auth: Auth) -> None:
    auth.register()
    file_id = upload(auth, "wait.txt", b"wait\n")

    with auth.client.get(f"/api/files/{file_id}/download") as response:
        assert response.status_code == 409
        body = response.get_json()
    assert body["code"] == "not_ready"
    assert body["status"] == "pending"
    assert body["error"]


def test_download_of_a_failed_file_is_409_not_ready(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "fake.png", b"words, not pixels\n")
    worker()

    with auth.client.get(f"/api/files/{file_id}/download") as response:
        assert response.status_code == 409
        body = response.get_json()
    assert (body["code"], body["status"]) == ("not_ready", "failed")


def test_download_needs_authentication(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    file_id = upload(auth, "a.txt", b"a\n")
    worker()
    auth.logout()

    with auth.client.get(f"/api/files/{file_id}/download") as response:
        assert response.status_code == 401
        assert response.get_json()["code"] == "unauthorized"
