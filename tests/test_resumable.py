"""Resumable uploads (tus 1.0.0) at /api/uploads: a real tus client over HTTP, raw requests
through the test client, races, expiry, termination and the quota, on the run's backend;
an upload resumed on another instance on a real S3 server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text
from tusclient import client as tus_client

from app import create_app
from app.broker import get_queue
from app.extensions import db as _db
from app.files import arrival_hash
from app.files.resumable import complete_stranded, expire_resumable
from app.files.sweep import sweep_if_due
from app.models import utcnow
from app.services import storage_check
from app.services.queue import job_id
from app.storage import get_storage
from tests.support.client import Auth
from tests.support.config import app_config
from tests.support.database import file_rows_refused
from tests.support.live import LiveServer, send_cut_off
from tests.support.processes import RedisServer
from tests.support.s3 import SeaweedFS
from tests.support.storage import (
    STORAGE_BACKEND,
    check_storage_consistent,
    pending_uploads,
    replace_stored_bytes,
    stored_bytes,
    stored_key,
    stored_objects,
)
from tests.support.tus import TUS, bearer, create, metadata, patch

MiB = 1024 * 1024


# RFC 9110's IMF-fixdate, the one form an HTTP date is sent in.
HTTP_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def expiry(response: Any) -> datetime:
    """An answer's Upload-Expires, which must be an HTTP date."""
    sent = response.headers["Upload-Expires"]
    assert HTTP_DATE.fullmatch(sent), sent
    return parsedate_to_datetime(sent)


def org(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    """GET /api/org."""
    return client.get("/api/org", headers=headers).get_json()


@pytest.fixture
def token(auth: Auth) -> str:
    """A registered admin's API token."""
    assert auth.register().status_code == 201
    return auth.token()


@pytest.fixture
def headers(token: str) -> dict[str, str]:
    """tus headers by bearer token."""
    return bearer(token)


def test_options_names_the_protocol(client: FlaskClient, app: Flask) -> None:
    """OPTIONS: version, extensions and the largest upload, without authentication."""
    response = client.options("/api/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Extension"] == (
        "creation,creation-with-upload,termination,expiration"
    )
    assert response.headers["Tus-Max-Size"] == str(app.config["MAX_FILE_SIZE"])


def test_a_tus_client_cut_off_and_resumed_by_another_gives_the_exact_bytes(
    app: Flask, auth: Auth, token: str, worker: Callable[[], None]
) -> None:
    """tuspy stops part-way; a new client resumes from the server's offset; the file is
    validated like any upload, with the SHA-256 computed as the bytes arrived."""
    data = os.urandom(19 * MiB + 12345)  # whole S3 parts, tails and a short last part
    server = LiveServer(app)
    server.start()
    try:
        client = tus_client.TusClient(
            f"{server.url}/api/uploads", headers={"Authorization": f"Bearer {token}"}
        )
        first = client.uploader(
            file_stream=io.BytesIO(data), chunk_size=3 * MiB, metadata={"filename": "big.bin"}
        )
        first.upload(stop_at=10 * MiB)
        url = first.url
        assert url is not None
        with app.test_client() as http:
            answer = http.head(url.removeprefix(server.url), headers=bearer(token))
        assert answer.status_code == 200
        assert int(answer.headers["Upload-Offset"]) == first.offset > 0
        assert answer.headers["Cache-Control"] == "no-store"
        assert auth.client.get("/api/files").get_json()["total"] == 0
        second = client.uploader(file_stream=io.BytesIO(data), chunk_size=4 * MiB, url=url)
        assert second.offset == first.offset
        second.upload()
    finally:
        server.stop()
    file_id = url.rsplit("/", 1)[-1]
    details = auth.client.get(f"/api/files/{file_id}").get_json()
    assert (details["status"], details["size"]) == ("pending", len(data))
    assert details["sha256"] == hashlib.sha256(data).hexdigest()
    worker()
    assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"
    download = auth.client.get(f"/api/files/{file_id}/download")
    received = download.data
    download.close()
    assert received == data
    assert not pending_uploads(app)


def test_a_dropped_or_half_sent_patch_leaves_the_offset_of_the_last_complete_one(
    app: Flask, auth: Auth, token: str, worker: Callable[[], None]
) -> None:
    """Over a real socket to waitress: a PATCH whose connection ends inside its headers, and
    one that ends with part of its body sent, change nothing; the upload resumes from the
    last complete PATCH and the file holds the exact bytes."""
    data = os.urandom(7 * MiB + 8)
    first = MiB + 3  # on s3, a tail short of a part waiting in the bucket
    server = LiveServer(app)
    server.start()
    try:
        with requests.Session() as http:
            http.headers.update(bearer(token))
            created = http.post(
                f"{server.url}/api/uploads",
                headers={"Upload-Length": str(len(data)), "Upload-Metadata": metadata("cut.bin")},
            )
            assert created.status_code == 201, created.text
            path = created.headers["Location"]
            sent = http.patch(
                server.url + path,
                data=data[:first],
                headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            )
            assert (sent.status_code, sent.headers["Upload-Offset"]) == (204, str(first))

            rest = data[first:]
            request_head = (
                f"PATCH {path} HTTP/1.1\r\n"
                f"Host: {server.url.removeprefix('http://')}\r\n"
                f"Authorization: Bearer {token}\r\n"
                "Tus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: {first}\r\n"
                "Content-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {len(rest)}\r\n\r\n"
            ).encode()
            # Cut inside the headers, then inside the body. (Past 512 KiB waitress spools a
            # body to a temporary file, which it leaves to the garbage collector when the
            # connection drops: a ResourceWarning, not a leak; so the cut comes sooner.)
            for cut_off in (request_head[:60], request_head + rest[: 256 * 1024 + 17]):
                assert send_cut_off(server.url, cut_off) == b""  # no answer at all
                head = http.head(server.url + path)
                assert head.status_code == 200
                assert head.headers["Upload-Offset"] == str(first)

            done = http.patch(
                server.url + path,
                data=rest,
                headers={
                    "Upload-Offset": head.headers["Upload-Offset"],
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert (done.status_code, done.headers["Upload-Offset"]) == (204, str(len(data)))
    finally:
        server.stop()
    file_id = path.rsplit("/", 1)[-1]
    worker()
    details = auth.client.get(f"/api/files/{file_id}").get_json()
    assert (details["status"], details["size"]) == ("ready", len(data)), details
    assert details["sha256"] == hashlib.sha256(data).hexdigest()
    download = auth.client.get(f"/api/files/{file_id}/download")
    received = download.data
    download.close()
    assert received == data
    assert not pending_uploads(app)


def test_bytes_changed_in_storage_before_validation_fail_the_file(
    app: Flask, client: FlaskClient, headers: dict[str, str], worker: Callable[[], None]
) -> None:
    """The job hashes what is stored and compares it with the SHA-256 taken as the bytes
    arrived: bytes of the same length changed in the store meanwhile fail the file."""
    data = b"what was sent\n" * 1000
    url = create(client, headers, len(data), "sent.txt").headers["Location"]
    assert patch(client, headers, url, 0, data).status_code == 204
    file_id = url.rsplit("/", 1)[-1]
    replace_stored_bytes(app, stored_key(app, file_id), data.replace(b"sent", b"kept"))
    worker()
    details = client.get(f"/api/files/{file_id}", headers=headers).get_json()
    assert details["status"] == "failed"
    assert details["error_message"].startswith("the stored bytes differ from those uploaded")
    assert hashlib.sha256(data).hexdigest() in details["error_message"]
    assert client.get(f"/api/files/{file_id}/download", headers=headers).status_code == 409


def test_raw_requests_create_with_upload_then_patch_then_head(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    """creation-with-upload, a PATCH, HEAD before and after the last byte; the holding
    becomes usage and the file is listed only once it is whole."""
    data = b"hello resumable world\n" * 1000
    created = client.post(
        "/api/uploads",
        data=data[:100],
        headers={
            **headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata("notes.txt") + ",kind dGV4dA==",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert created.status_code == 201, created.get_json()
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert created.headers["Upload-Offset"] == "100"
    window = timedelta(hours=app.config["RESUMABLE_EXPIRY_HOURS"])
    assert expiry(created) == pytest.approx(datetime.now(UTC) + window, abs=timedelta(minutes=1))
    url = created.headers["Location"]
    assert url.startswith("/api/uploads/")
    usage = org(client, headers)
    assert (usage["reserved_bytes"], usage["used_bytes"], usage["file_count"]) == (len(data), 0, 0)
    head = client.head(url, headers=headers)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "100"
    assert head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Upload-Metadata"] == metadata("notes.txt") + ",kind dGV4dA=="
    assert head.headers["Upload-Expires"] == created.headers["Upload-Expires"]

    # As if the last PATCH were a day less an hour ago: HEAD tells the hour left, and the
    # next PATCH moves the expiry a whole window on from now.
    with app.app_context():
        _db.session.execute(
            text("UPDATE resumable_uploads SET expires_at = :soon"),
            {"soon": utcnow() + timedelta(hours=1)},
        )
        _db.session.commit()
    soon = expiry(client.head(url, headers=headers))
    assert soon == pytest.approx(datetime.now(UTC) + timedelta(hours=1), abs=timedelta(minutes=1))
    middle = patch(client, headers, url, 100, data[100:200])
    assert (middle.status_code, middle.headers["Upload-Offset"]) == (204, "200")
    head = client.head(url, headers=headers)
    assert head.headers["Upload-Offset"] == "200"
    assert head.headers["Upload-Expires"] == middle.headers["Upload-Expires"]
    assert expiry(head) == pytest.approx(datetime.now(UTC) + window, abs=timedelta(minutes=1))
    assert expiry(head) > soon

    done = patch(client, headers, url, 200, data[200:])
    assert done.status_code == 204
    assert done.headers["Upload-Offset"] == str(len(data))
    again = client.head(url, headers=headers)
    assert again.headers["Upload-Offset"] == again.headers["Upload-Length"] == str(len(data))
    assert "Upload-Expires" not in again.headers  # a finished upload does not expire
    usage = org(client, headers)
    assert (usage["reserved_bytes"], usage["used_bytes"], usage["file_count"]) == (0, len(data), 1)
    file_id = url.rsplit("/", 1)[-1]
    listed = client.get("/api/files", headers=headers).get_json()["files"]
    assert [(f["id"], f["filename"], f["status"]) for f in listed] == [
        (file_id, "notes.txt", "pending")
    ]
    (key,) = stored_objects(app)
    assert stored_bytes(app, key) == data
    # Deleted as a file, the upload is gone too.
    assert client.delete(f"/api/files/{file_id}", headers=headers).status_code == 204
    assert client.head(url, headers=headers).status_code == 404


def test_every_refusal(app: Flask, client: FlaskClient, headers: dict[str, str]) -> None:
    """400, 401, 404, 409, 412, 413, 415 and 507, each as JSON with Tus-Resumable."""

    def refused(response: Any, status: int, code: str) -> None:
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.headers["Tus-Resumable"] == "1.0.0"
        body = response.get_json(silent=True)  # HEAD answers carry no body
        if body is not None:
            assert body["code"] == code

    limit = app.config["MAX_FILE_SIZE"]
    anonymous = app.test_client()
    refused(create(anonymous, TUS, 10), 401, "unauthorized")
    refused(
        create(client, {"Authorization": headers["Authorization"]}, 10), 412, "unsupported_version"
    )
    answer = create(client, {**headers, "Tus-Resumable": "0.2.2"}, 10)
    refused(answer, 412, "unsupported_version")
    assert answer.headers["Tus-Version"] == "1.0.0"
    refused(
        client.post("/api/uploads", headers={**headers, "Upload-Metadata": metadata("a")}),
        400,
        "invalid_upload_length",
    )
    refused(create(client, headers, -1), 400, "invalid_upload_length")
    refused(create(client, headers, 0), 400, "empty_file")
    refused(
        client.post("/api/uploads", headers={**headers, "Upload-Length": "5"}),
        400,
        "invalid_filename",
    )
    bad_name = {**headers, "Upload-Length": "5", "Upload-Metadata": "filename ***"}
    refused(client.post("/api/uploads", headers=bad_name), 400, "invalid_filename")
    refused(create(client, headers, 5, name="../"), 400, "invalid_filename")
    refused(create(client, headers, limit + 1), 413, "file_too_large")
    # Within MAX_FILE_SIZE but past the organization's quota (1 MiB, below the largest
    # file, whatever the defaults).
    with app.app_context():
        _db.session.execute(text("UPDATE organizations SET storage_quota_mb = 1"))
        _db.session.commit()
    assert MiB + 1 <= limit
    refused(create(client, headers, MiB + 1), 507, "quota_exceeded")

    url = create(client, headers, 10).headers["Location"]
    refused(patch(client, headers, url, 3, b"abc"), 409, "offset_mismatch")
    refused(patch(client, headers, url, 0, b"x" * 11), 413, "past_upload_length")
    wrong_type = client.patch(
        url,
        data=b"abc",
        headers={**headers, "Upload-Offset": "0", "Content-Type": "application/octet-stream"},
    )
    refused(wrong_type, 415, "unsupported_media_type")
    refused(
        patch(client, {"Authorization": headers["Authorization"]}, url, 0, b"abc"),
        412,
        "unsupported_version",
    )
    refused(
        client.patch(
            url, data=b"abc", headers={**headers, "Content-Type": "application/offset+octet-stream"}
        ),
        400,
        "invalid_upload_offset",
    )
    for missing in ("/api/uploads/00000000-0000-4000-8000-000000000000", "/api/uploads/nope"):
        refused(client.head(missing, headers=headers), 404, "not_found")
        refused(patch(client, headers, missing, 0, b"a"), 404, "not_found")
        refused(client.delete(missing, headers=headers), 404, "not_found")

    # Another tenant's upload is one that does not exist.
    other = Auth(app, app.test_client())
    other.register(email="eve@other.test", organization_name="Other")
    eve = bearer(other.token())
    refused(other.client.head(url, headers=eve), 404, "not_found")
    refused(patch(other.client, eve, url, 0, b"abc"), 404, "not_found")
    refused(other.client.delete(url, headers=eve), 404, "not_found")
    assert client.delete(url, headers=headers).status_code == 204


def test_cookie_writes_need_the_csrf_token(app: Flask, auth: Auth) -> None:
    """Signed in by cookie, POST, PATCH and DELETE without X-CSRF-Token are 400
    csrf_failed and change nothing; with it they work. HEAD needs no token."""
    assert auth.register().status_code == 201
    browser = auth.client
    with_token = {**TUS, **auth.headers()}

    def csrf_failed(response: Any) -> None:
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.headers["Tus-Resumable"] == "1.0.0"
        assert response.get_json()["code"] == "csrf_failed"

    csrf_failed(create(browser, TUS, 10))
    assert org(browser, {})["reserved_bytes"] == 0
    created = create(browser, with_token, 10)
    assert created.status_code == 201
    url = created.headers["Location"]

    csrf_failed(patch(browser, TUS, url, 0, b"abc"))
    assert browser.head(url, headers=TUS).headers["Upload-Offset"] == "0"
    assert patch(browser, with_token, url, 0, b"abc").status_code == 204
    assert browser.head(url, headers=TUS).headers["Upload-Offset"] == "3"

    csrf_failed(browser.delete(url, headers=TUS))
    head = browser.head(url, headers=TUS)
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, "3")
    assert org(browser, {})["reserved_bytes"] == 10
    assert patch(browser, with_token, url, 3, b"defg").status_code == 204  # still writable
    assert browser.delete(url, headers=with_token).status_code == 204
    assert browser.head(url, headers=TUS).status_code == 404
    assert org(browser, {})["reserved_bytes"] == 0
    assert not pending_uploads(app)


def test_quota_counts_what_unfinished_uploads_hold(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    """A creation that would pass the quota with every holding counted gets 507; so does a
    multipart upload while the holding lasts."""
    with app.app_context():
        _db.session.execute(text("UPDATE organizations SET storage_quota_mb = 1"))
        _db.session.commit()
    assert create(client, headers, MiB - 10).status_code == 201
    refused = create(client, headers, 11)
    assert refused.status_code == 507
    assert refused.get_json()["code"] == "quota_exceeded"
    multipart = client.post(
        "/api/files/upload",
        data={"file": (io.BytesIO(b"x" * 11), "b.txt")},
        headers={"Authorization": headers["Authorization"]},
        content_type="multipart/form-data",
    )
    assert multipart.status_code == 507
    assert create(client, headers, 10).status_code == 201
    assert org(client, headers)["reserved_bytes"] == MiB


def test_twenty_concurrent_creations_never_over_commit(app: Flask, headers: dict[str, str]) -> None:
    """20 creations at once against room for 7: exactly 7 hold, and the holding is theirs."""
    size = MiB // 7 + 1
    with app.app_context():
        _db.session.execute(text("UPDATE organizations SET storage_quota_mb = 1"))
        _db.session.commit()
    statuses: list[int] = []
    start = threading.Barrier(20)

    def one() -> None:
        with app.test_client() as http:
            start.wait()
            statuses.append(create(http, headers, size).status_code)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 6 + [507] * 14
    with app.test_client() as http:
        usage = org(http, headers)
    assert usage["reserved_bytes"] == 6 * size <= MiB


def test_two_racing_patches_never_interleave(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    """Two PATCHes at the same offset at once: one is stored, the other gets 409; and a
    PATCH while another request holds the upload's lock gets 409 upload_locked."""
    url = create(client, headers, 4 * MiB).headers["Location"]
    bodies = {b"A" * (2 * MiB), b"B" * (2 * MiB)}
    answers: dict[bytes, int] = {}
    start = threading.Barrier(2)

    def send(body: bytes) -> None:
        with app.test_client() as http:
            start.wait()
            answers[body] = patch(http, headers, url, 0, body).status_code

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers.values()) == [204, 409]
    (winner,) = [body for body, status in answers.items() if status == 204]
    with app.app_context():
        _db.session.execute(
            text("UPDATE resumable_uploads SET lock_token = 'other', locked_until = :until"),
            {"until": utcnow() + timedelta(minutes=5)},
        )
        _db.session.commit()
    held = patch(client, headers, url, 2 * MiB, b"C" * (2 * MiB))
    assert (held.status_code, held.get_json()["code"]) == (409, "upload_locked")
    with app.app_context():
        _db.session.execute(
            text("UPDATE resumable_uploads SET locked_until = :past"),
            {"past": utcnow() - timedelta(seconds=1)},
        )
        _db.session.commit()
    assert patch(client, headers, url, 2 * MiB, b"C" * (2 * MiB)).status_code == 204
    (key,) = stored_objects(app)
    assert stored_bytes(app, key) == winner + b"C" * (2 * MiB)


def test_termination_removes_the_bytes_and_frees_the_holding(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    """DELETE: 204, no piece left, nothing held, and the upload is gone."""
    url = create(client, headers, 12 * MiB).headers["Location"]
    assert patch(client, headers, url, 0, os.urandom(9 * MiB)).status_code == 204
    assert pending_uploads(app)
    assert client.delete(url, headers=headers).status_code == 204
    assert not pending_uploads(app)
    assert org(client, headers)["reserved_bytes"] == 0
    assert client.head(url, headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404


def test_expiry_frees_the_holding_and_the_bytes(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    """An upload past its expiry answers 404, and the sweep's expiry removes it."""
    url = create(client, headers, 10 * MiB).headers["Location"]
    assert patch(client, headers, url, 0, os.urandom(9 * MiB + 1)).status_code == 204
    kept = create(client, headers, 10).headers["Location"]
    assert pending_uploads(app)
    with app.app_context():
        _db.session.execute(
            text("UPDATE resumable_uploads SET expires_at = :past WHERE id = :id"),
            {"past": utcnow() - timedelta(hours=1), "id": url.rsplit("/", 1)[-1]},
        )
        _db.session.commit()
    assert client.head(url, headers=headers).status_code == 404
    with app.app_context():
        assert expire_resumable() == 1
    assert not pending_uploads(app)
    assert org(client, headers)["reserved_bytes"] == 10
    assert client.head(kept, headers=headers).status_code == 200


def test_an_upload_whose_host_died_before_making_the_file_is_completed_by_the_sweep(
    app: Flask,
    client: FlaskClient,
    headers: dict[str, str],
    redis: Redis,
    worker: Callable[[], None],
) -> None:
    """Every byte recorded, then the file never made (here the database refuses the file
    row, as a host dying between the two steps would leave it): the sweep makes it."""
    data = b"the last PATCH got through, the file did not\n" * 1000
    url = create(client, headers, len(data), "stranded.txt").headers["Location"]
    file_id = url.rsplit("/", 1)[-1]
    with file_rows_refused(app):
        answer = patch(client, headers, url, 0, data)
    assert answer.status_code == 500  # the bytes are recorded; the file row is not
    head = client.head(url, headers=headers)
    assert head.headers["Upload-Offset"] == str(len(data))
    assert client.get(f"/api/files/{file_id}", headers=headers).status_code == 404
    assert org(client, headers)["reserved_bytes"] == len(data)

    with app.app_context():
        assert complete_stranded() == 0  # a PATCH may still be making it: not yet
        # As if the last PATCH had ended two minutes ago; then the worker's sweep runs.
        expires = _db.session.scalar(
            text("SELECT expires_at FROM resumable_uploads WHERE id = :id"), {"id": file_id}
        )
        if isinstance(expires, str):  # SQLite hands back its text form
            expires = datetime.fromisoformat(expires)
        _db.session.execute(
            text("UPDATE resumable_uploads SET expires_at = :then WHERE id = :id"),
            {"then": expires - timedelta(minutes=2), "id": file_id},
        )
        _db.session.commit()
        # Completing it queues its validation, so the sweep finds nothing stuck.
        assert sweep_if_due(redis, "test", force=True) == []
        assert get_queue(redis).job_ids == [job_id(file_id)]
        _db.session.remove()
    worker()

    details = client.get(f"/api/files/{file_id}", headers=headers).get_json()
    assert details["status"] == "ready", details
    assert details["sha256"] == hashlib.sha256(data).hexdigest()
    download = client.get(f"/api/files/{file_id}/download", headers=headers)
    assert download.data == data
    download.close()
    usage = org(client, headers)
    assert (usage["reserved_bytes"], usage["used_bytes"], usage["file_count"]) == (
        0,
        len(data),
        1,
    )


def test_storage_check_leaves_in_flight_uploads_alone(
    app: Flask, client: FlaskClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """However old, an unfinished upload's pieces are not stale while its row lives."""
    monkeypatch.setattr(storage_check, "GRACE_SECONDS", 0)
    url = create(client, headers, 12 * MiB).headers["Location"]
    assert patch(client, headers, url, 0, os.urandom(9 * MiB)).status_code == 204
    with app.app_context():
        report = storage_check.check(fix=True)
    assert report.stale_temp == [] and report.orphans == []
    assert pending_uploads(app)
    assert client.delete(url, headers=headers).status_code == 204


def test_an_upload_in_flight_across_an_upgrade_finishes(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    """A state as Coffer wrote it before the resumable protocol sat over the storage
    primitives (local: `{}`, the bytes in `.resumable/<id>`; s3: parts, upload_id, tail)
    is understood: the upload goes on and makes the exact file, leaving nothing behind."""
    data = os.urandom(19 * MiB + 5)
    first = 9 * MiB + 3  # on s3, a part begun and a tail short of the next
    url = create(client, headers, len(data), "across.bin").headers["Location"]
    assert patch(client, headers, url, 0, data[:first]).status_code == 204
    upload_id = url.rsplit("/", 1)[-1]
    with app.app_context():
        stored = _db.session.execute(
            text("SELECT storage_state FROM resumable_uploads WHERE id = :id"), {"id": upload_id}
        ).scalar_one()
        state = json.loads(stored)
        if get_storage().min_part_size == 0:
            state = {}
        else:
            assert set(state) == {"parts", "upload_id", "tail"}
            assert state["upload_id"] and state["tail"] and len(state["parts"]) == 1
        _db.session.execute(
            text("UPDATE resumable_uploads SET storage_state = :state WHERE id = :id"),
            {"state": json.dumps(state), "id": upload_id},
        )
        _db.session.commit()
    assert patch(client, headers, url, first, data[first:]).status_code == 204
    assert stored_bytes(app, stored_key(app, upload_id)) == data
    assert not pending_uploads(app)


def test_the_sha256_carries_across_patches_cut_at_every_edge_of_a_block(
    app: Flask, client: FlaskClient, headers: dict[str, str], worker: Callable[[], None]
) -> None:
    """PATCHes of 1, 62, 1, 64, 65 ... bytes: the state each stores is the one a host
    hashing without libcrypto continues from (and rows written before it hashed on a
    thread), and the file's SHA-256 is the bytes'."""
    sizes = [1, 62, 1, 64, 65, 127, 3 * 64, 1000, 4 * MiB + 7, 63]
    data = os.urandom(sum(sizes))
    url = create(client, headers, len(data), "edges.bin").headers["Location"]
    upload_id = url.rsplit("/", 1)[-1]
    offset = 0
    for size in sizes:
        assert patch(client, headers, url, offset, data[offset : offset + size]).status_code == 204
        offset += size
        if offset == len(data):
            break
        with app.app_context():
            stored = _db.session.execute(
                text("SELECT hash_state FROM resumable_uploads WHERE id = :id"),
                {"id": upload_id},
            ).scalar_one()
            _db.session.rollback()
        inline = arrival_hash.ArrivalHash(arrival_hash.initial_state(), threaded=False)
        inline.update(data[:offset])
        assert bytes(stored) == inline.state(), offset
    details = client.get(f"/api/files/{upload_id}", headers=headers).get_json()
    assert details["sha256"] == hashlib.sha256(data).hexdigest()
    worker()
    assert client.get(f"/api/files/{upload_id}", headers=headers).get_json()["status"] == "ready"


# ---- another instance, on a real S3 server ------------------------------------------


@pytest.fixture
def two_instances(
    s3_server: SeaweedFS,
    migrated_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Flask, Flask]]:
    """Two complete apps on one database, Redis and bucket (S3, whatever the run's backend)."""
    # The run's bucket on an s3 run (each new bucket takes volumes of the server's own).
    bucket = os.environ["S3_BUCKET"] if STORAGE_BACKEND == "s3" else s3_server.new_bucket("tus")
    environment = s3_server.environment(bucket)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, environment[name])
    s3 = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": environment["S3_BUCKET"],
        "S3_ENDPOINT_URL": environment["S3_ENDPOINT_URL"],
        "S3_PREFIX": f"tus-{uuid.uuid4().hex[:8]}/",
    }
    apps = tuple(
        create_app(app_config(migrated_database, redis_server.url, tmp_path / name, **s3))
        for name in ("one", "two")
    )
    Redis.from_url(redis_server.url).flushall()
    yield apps  # type: ignore[misc]
    check_storage_consistent(apps[0])
    with apps[0].app_context():
        _db.session.remove()
        with _db.engine.begin() as conn:
            for table in ("resumable_uploads", "files", "api_tokens", "users", "organizations"):
                conn.execute(text(f"DELETE FROM {table}"))
    for flask_app in apps:
        with flask_app.app_context():
            _db.engine.dispose()


def test_an_upload_resumed_on_another_instance(two_instances: tuple[Flask, Flask]) -> None:
    """Begun on one host, with a tail short of a part left in the bucket, finished on the
    other: the exact bytes, and nothing left over."""
    one, two = two_instances
    auth = Auth(one, one.test_client())
    assert auth.register().status_code == 201
    headers = bearer(auth.token())
    data = os.urandom(18 * MiB + 777)
    first, second = one.test_client(), two.test_client()
    url = create(first, headers, len(data), "far.bin").headers["Location"]
    assert patch(first, headers, url, 0, data[: 9 * MiB]).status_code == 204
    assert patch(first, headers, url, 9 * MiB, data[9 * MiB : 10 * MiB]).status_code == 204
    offset = int(second.head(url, headers=headers).headers["Upload-Offset"])
    assert offset == 10 * MiB
    assert patch(second, headers, url, offset, data[offset:]).status_code == 204
    file_id = url.rsplit("/", 1)[-1]
    (key,) = [k for k in stored_objects(two) if file_id in k]
    assert stored_bytes(one, key) == data
    assert not pending_uploads(two)
