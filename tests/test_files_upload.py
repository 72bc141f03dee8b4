"""Uploads: the 201 answer, every refusal, display names and where the bytes land."""

from __future__ import annotations

import io
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.broker import get_queue
from app.multipart import PARSE_CHUNK
from app.services.queue import job_id
from tests.support.client import Auth, part_frame, usage
from tests.support.storage import pending_uploads, stored_bytes, stored_objects

MiB = 1024 * 1024


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """A 1 MiB upload limit, so the limit is cheap to cross."""
    return {"MAX_FILE_SIZE_MB": 1}


def stored_files(app: Flask) -> list[str]:
    """The key of every stored object and of every upload in flight, through the backend."""
    return sorted([*stored_objects(app), *pending_uploads(app)])


def assert_nothing_kept(app: Flask, auth: Auth) -> None:
    """A refused upload leaves no bytes, no row and no reserved quota."""
    assert stored_files(app) == []
    assert usage(auth.client) == (0, 0)
    assert auth.client.get("/api/files").get_json()["total"] == 0


def raw_multipart(
    client: FlaskClient,
    disposition: bytes,
    data: bytes,
    headers: dict[str, str],
) -> Any:
    """POST a hand-built multipart body whose part has exactly this Content-Disposition."""
    boundary = uuid.uuid4().hex
    head, tail = part_frame(disposition, boundary)
    body = head + data + tail
    return client.post(
        "/api/files/upload",
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def big_upload(auth: Auth, filename: str, size: int) -> Any:
    """Upload `size` zero bytes with the body built in memory.

    The test client spools large multipart bodies it encodes itself to a temporary
    file that it never closes; a body passed as bytes stays in memory.
    """
    disposition = f'form-data; name="file"; filename="{filename}"'.encode()
    return raw_multipart(auth.client, disposition, b"\0" * size, auth.headers())


def test_upload_answers_201_pending_before_validation(app: Flask, auth: Auth, redis) -> None:
    auth.register()
    response = auth.upload("notes.txt", b"hello coffer\n")

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"file_id", "filename", "size", "status", "version"}
    assert str(uuid.UUID(body["file_id"])) == body["file_id"]
    assert body["version"] == 1
    assert body["filename"] == "notes.txt"
    assert body["size"] == 13
    assert body["status"] == "pending"
    # No worker ran: the validation job waits on the queue under the file's job id.
    assert get_queue(redis).job_ids == [job_id(body["file_id"])]
    details = auth.client.get(f"/api/files/{body['file_id']}").get_json()
    assert details["status"] == "pending"
    assert details["processed_at"] is None
    org_id = auth.client.get("/api/org").get_json()["id"]
    stored = f"{org_id}/{body['file_id']}/notes.txt"
    assert stored_files(app) == [stored]
    assert stored_bytes(app, stored) == b"hello coffer\n"
    assert usage(auth.client) == (13, 1)


def test_bytes_like_the_boundary_across_the_parsers_reads_are_stored_exactly(
    app: Flask, auth: Auth
) -> None:
    """The start of the body's own delimiter inside the file, cut across the edges where
    the parser reads the next piece of the body, is data: stored byte for byte."""
    auth.register()
    boundary = uuid.uuid4().hex
    head, tail = part_frame(b'form-data; name="file"; filename="edges.bin"', boundary)
    almost = (b"\r\n--" + boundary.encode())[:-1]
    data = bytearray(random.Random(7).randbytes(3 * PARSE_CHUNK))
    for edge, cut in ((1, 1), (2, len(almost) // 2), (3, len(almost) - 1)):
        start = edge * PARSE_CHUNK - len(head) - cut  # `cut` bytes before the read edge
        data[start : start + len(almost)] = almost
    response = auth.client.post(
        "/api/files/upload",
        data=head + bytes(data) + tail,
        headers=auth.headers(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["size"] == len(data)
    (key,) = stored_files(app)
    assert stored_bytes(app, key) == bytes(data)


def test_upload_without_a_file_part_is_400_no_file(app: Flask, auth: Auth) -> None:
    auth.register()
    as_field = auth.client.post(
        "/api/files/upload",
        data={"file": "just a form field"},
        headers=auth.headers(),
        content_type="multipart/form-data",
    )
    other_name = auth.client.post(
        "/api/files/upload",
        data={"document": (io.BytesIO(b"data"), "a.txt")},
        headers=auth.headers(),
        content_type="multipart/form-data",
    )
    as_json = auth.client.post("/api/files/upload", json={"file": "x"}, headers=auth.headers())

    for response in (as_field, other_name, as_json):
        assert response.status_code == 400
        assert response.get_json()["code"] == "no_file"
    assert_nothing_kept(app, auth)


def test_upload_with_an_empty_filename_is_400(app: Flask, auth: Auth) -> None:
    auth.register()
    response = raw_multipart(
        auth.client, b'form-data; name="file"; filename=""', b"data", auth.headers()
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_filename"
    assert_nothing_kept(app, auth)


def test_upload_of_an_empty_file_is_400(app: Flask, auth: Auth) -> None:
    auth.register()
    response = auth.upload("empty.txt", b"")

    assert response.status_code == 400
    assert response.get_json()["code"] == "empty_file"
    assert_nothing_kept(app, auth)


def test_file_exactly_at_the_limit_is_accepted(app: Flask, auth: Auth) -> None:
    auth.register()
    response = big_upload(auth, "exact.bin", MiB)

    assert response.status_code == 201
    assert response.get_json()["size"] == MiB
    assert usage(auth.client) == (MiB, 1)


def test_file_a_little_over_the_limit_is_413(app: Flask, auth: Auth) -> None:
    auth.register()
    response = big_upload(auth, "big.bin", MiB + 1)

    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == "file_too_large"
    assert "1 MiB" in body["error"]
    assert_nothing_kept(app, auth)


def test_body_declared_over_the_limit_is_413(app: Flask, auth: Auth) -> None:
    auth.register()
    response = big_upload(auth, "huge.bin", 2 * MiB)

    assert response.status_code == 413
    assert response.get_json()["code"] == "file_too_large"
    assert_nothing_kept(app, auth)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\me\\..\\report.txt", "report.txt"),
        ("dir/sub\\mixed.txt", "mixed.txt"),
        ("  spaced name.txt  ", "spaced name.txt"),
        ("résumé 2024.txt", "résumé 2024.txt"),
        ("日本語.txt", "日本語.txt"),
        ("..\\..\\..\\windows\\win.ini", "win.ini"),
    ],
)
def test_display_name_is_the_last_component(app: Flask, auth: Auth, raw: str, shown: str) -> None:
    auth.register()
    response = auth.upload(raw, b"content")

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["filename"] == shown
    assert auth.client.get(f"/api/files/{body['file_id']}").get_json()["filename"] == shown
    assert_stored_inside_own_folder(app, auth, body["file_id"])


def assert_stored_inside_own_folder(app: Flask, auth: Auth, file_id: str) -> None:
    """The only stored object is <org>/<file_id>/<one ASCII-safe name>."""
    root = Path(app.config["UPLOAD_FOLDER"]).resolve()
    org_id = auth.client.get("/api/org").get_json()["id"]
    (stored,) = stored_files(app)
    folder, _, name = stored.rpartition("/")
    assert folder == f"{org_id}/{file_id}"
    assert name not in {"", ".", ".."}
    assert name.isascii() and "/" not in name and "\\" not in name
    # Nothing escaped the upload folder next to it.
    assert not (root.parent / "etc").exists()
    assert not (root.parent / "windows").exists()


def test_control_characters_are_removed(app: Flask, auth: Auth) -> None:
    auth.register()
    raw = "in\x01voice\x1f\x7f\u200b.txt"
    response = raw_multipart(
        auth.client,
        f'form-data; name="file"; filename="{raw}"'.encode(),
        b"content",
        auth.headers(),
    )

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == "invoice.txt"
    assert_stored_inside_own_folder(app, auth, response.get_json()["file_id"])


@pytest.mark.parametrize(
    ("disposition", "shown"),
    [
        # Browsers and HTTP libraries leave backslashes alone and escape only quotes.
        (b'form-data; name="file"; filename="C:\\Users\\me\\plan.txt"', "plan.txt"),
        (b'form-data; name="file"; filename="a\\b.txt"', "b.txt"),
        # curl escapes both backslashes and quotes.
        (b'form-data; name="file"; filename="C:\\\\Users\\\\q.txt"', "q.txt"),
        (b'form-data; name="file"; filename="say \\"hi\\".txt"', 'say "hi".txt'),
        # RFC 5987 extended parameter.
        (b"form-data; name=\"file\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt", "résumé.txt"),
        (b'form-data; name="file"; filename="..\\..\\boot.ini"', "boot.ini"),
    ],
)
def test_name_as_clients_encode_it(app: Flask, auth: Auth, disposition: bytes, shown: str) -> None:
    auth.register()
    response = raw_multipart(auth.client, disposition, b"content", auth.headers())

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["filename"] == shown
    assert_stored_inside_own_folder(app, auth, response.get_json()["file_id"])


def test_long_name_is_cut_to_255_bytes_keeping_the_extension(app: Flask, auth: Auth) -> None:
    auth.register()
    ascii_long = auth.upload("a" * 300 + ".txt", b"one")
    wide_long = auth.upload("é" * 200 + ".txt", b"two")

    assert ascii_long.status_code == wide_long.status_code == 201
    ascii_name = ascii_long.get_json()["filename"]
    assert ascii_name == "a" * 251 + ".txt"
    wide_name = wide_long.get_json()["filename"]
    assert len(wide_name.encode()) <= 255
    # Cut on a character boundary, never inside a two-byte "é".
    assert wide_name == "é" * 125 + ".txt"


@pytest.mark.parametrize(
    "raw", ["../", "dir\\\\", "   ", "\x01\x02", "/", ".", "..", "a/..", "\u200b"]
)
def test_name_empty_after_cleaning_is_400(app: Flask, auth: Auth, raw: str) -> None:
    auth.register()
    response = raw_multipart(
        auth.client,
        f'form-data; name="file"; filename="{raw}"'.encode(),
        b"content",
        auth.headers(),
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_filename"
    assert_nothing_kept(app, auth)


def test_unauthenticated_upload_is_401(app: Flask, auth: Auth) -> None:
    response = auth.upload("notes.txt", b"hello", headers={})

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"
    assert stored_files(app) == []


def test_cookie_upload_without_csrf_token_is_refused(app: Flask, auth: Auth) -> None:
    auth.register()
    response = auth.upload("notes.txt", b"hello", headers={})

    assert response.status_code == 400
    assert response.get_json()["code"] == "csrf_failed"
    assert_nothing_kept(app, auth)


def test_bearer_token_upload_needs_no_csrf_token(app: Flask, auth: Auth) -> None:
    auth.register()
    token = auth.token()
    script = app.test_client()
    response = script.post(
        "/api/files/upload",
        data={"file": (io.BytesIO(b"from a script"), "script.txt")},
        headers={"Authorization": f"Bearer {token}"},
        content_type="multipart/form-data",
    )

    assert response.status_code == 201
    assert response.get_json()["filename"] == "script.txt"
    assert usage(auth.client) == (13, 1)


def test_quota_is_reserved_per_upload(app: Flask, auth: Auth) -> None:
    auth.register()
    first = auth.upload("one.txt", b"1" * 10)
    second = auth.upload("two.txt", b"2" * 20)

    assert first.status_code == second.status_code == 201
    assert first.get_json()["file_id"] != second.get_json()["file_id"]
    assert usage(auth.client) == (30, 2)
    assert len(stored_files(app)) == 2


def test_a_part_header_that_is_not_utf8_is_400_saying_so(app: Flask, auth: Auth) -> None:
    """Not a missing file: the client is told its part's headers are not UTF-8."""
    auth.register()
    response = raw_multipart(
        auth.client, b'form-data; name="file"; filename="caf\xe9.txt"', b"hello", auth.headers()
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_part_header"
    assert "UTF-8" in response.get_json()["error"]
    assert_nothing_kept(app, auth)


def test_an_empty_part_framed_without_its_blank_line_is_a_malformed_body(
    app: Flask, auth: Auth
) -> None:
    """Flask's test client frames an empty part as headers then the next boundary, with no
    blank line between; browsers, curl and requests never do. Such a body is refused as
    malformed (400, nothing kept); the same empty file framed as they frame it is
    `empty_file`."""
    auth.register()
    response = auth.client.post(
        "/api/files/upload",
        data={"file": (io.BytesIO(b""), "empty.txt")},
        headers=auth.headers(),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "no_file"
    assert_nothing_kept(app, auth)
    assert auth.upload("empty.txt", b"").get_json()["code"] == "empty_file"


def test_too_many_form_parts_is_400_too_many_parts(app: Flask, auth: Auth) -> None:
    """A form of many tiny fields is refused for its shape, not as a file too large."""
    auth.register()
    limit = app.config["MAX_FORM_PARTS"]
    fields = {f"field{n}": "x" for n in range(limit + 5)}
    response = auth.client.post(
        "/api/files/upload",
        data={**fields, "file": (io.BytesIO(b"data"), "a.txt")},
        headers=auth.headers(),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "too_many_parts"
    assert str(limit) in body["error"]
    assert_nothing_kept(app, auth)


def test_a_body_over_the_limit_is_still_413_file_too_large(app: Flask, auth: Auth) -> None:
    auth.register()
    # Built by hand: the test client would spool a body this size to a file it never closes.
    response = raw_multipart(
        auth.client, b'form-data; name="file"; filename="big.txt"', b"x" * (MiB + 1), auth.headers()
    )
    assert response.status_code == 413
    assert response.get_json()["code"] == "file_too_large"
    assert_nothing_kept(app, auth)
