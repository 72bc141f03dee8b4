"""The s3 storage backend against a real S3 server (a SeaweedFS of this module's own)."""

from __future__ import annotations

import io
import os
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from app.content_disposition import attachment
from app.models import Organization
from app.services import storage_check
from app.storage import EXTENSION_KEY, build, get_storage
from app.storage.s3 import PART_SIZE
from tests.support.client import Auth, multipart, usage
from tests.support.database import run_sql
from tests.support.s3 import SECRET_KEY, SeaweedFS, keys_in, uploads_in

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """This module's own S3 server, whatever backend the rest of the run uses."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs-own"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bucket(seaweedfs: SeaweedFS) -> str:
    """The module's bucket (SeaweedFS gives each bucket volumes of its own: few buckets)."""
    return seaweedfs.new_bucket()


@pytest.fixture
def prefix() -> str:
    """A fresh part of the bucket for one test."""
    return f"coffer-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def s3_extra() -> dict[str, Any]:
    """More settings for one test (parametrize it)."""
    return {}


@pytest.fixture
def s3_secret() -> str:
    """The secret key the app is started with (parametrize it to a wrong one)."""
    return SECRET_KEY


@pytest.fixture
def app_overrides(
    seaweedfs: SeaweedFS,
    bucket: str,
    prefix: str,
    s3_extra: dict[str, Any],
    s3_secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Every app of this module stores in the module's bucket under the test's prefix."""
    environment = seaweedfs.environment(bucket)
    # Credentials reach boto3 by its usual chain: the environment here.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", environment["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_secret)
    return {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "S3_REGION": "us-east-1",
        "S3_PREFIX": prefix,
        **s3_extra,
    }


@pytest.fixture
def s3(seaweedfs: SeaweedFS) -> Any:
    """A boto3 client of the test's own, to look at the bucket from outside Coffer."""
    return seaweedfs.client()


def stored(app: Flask, operation: str) -> threading.Event:
    """An event set once the app's first call of this S3 operation has been answered."""
    answered = threading.Event()

    def record(**_: Any) -> None:
        answered.set()

    with app.app_context():
        get_storage().client.meta.events.register(  # type: ignore[attr-defined]
            f"after-call.s3.{operation}", record
        )
    return answered


def calls(app: Flask, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every call of one S3 operation the app makes."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append({k: v for k, v in params.items() if k != "Body"})

    with app.app_context():
        get_storage().client.meta.events.register(  # type: ignore[attr-defined]
            f"provide-client-params.s3.{operation}", record
        )
    return seen


def org_id(auth: Auth) -> int:
    """The caller's organization id."""
    return int(auth.client.get("/api/org").get_json()["id"])


def raw_upload(auth: Auth, filename: str, data: bytes) -> Any:
    """Upload with the multipart body built in memory (the test client spools bodies it
    encodes itself to a temporary file it never closes)."""
    body, content_type = multipart(filename, data)
    return auth.client.post(
        "/api/files/upload", data=body, content_type=content_type, headers=auth.headers()
    )


def test_upload_validate_download_with_range_etag_and_304(
    app: Flask, auth: Auth, worker: Callable[[], None], s3: Any, bucket: str, prefix: str
) -> None:
    auth.register()
    data = b"line of text for coffer\n" * 1000
    response = auth.upload("Quarterly report.txt", data)
    assert response.status_code == 201, response.get_json()
    file_id = response.get_json()["file_id"]
    key = f"{prefix}{org_id(auth)}/{file_id}/Quarterly_report.txt"
    assert keys_in(s3, bucket, prefix) == {key: len(data)}

    worker()
    details = auth.client.get(f"/api/files/{file_id}").get_json()
    assert details["status"] == "ready", details
    assert details["mime_type"] == "text/plain"

    gets = calls(app, "GetObject")
    whole = auth.client.get(f"/api/files/{file_id}/download")
    assert whole.status_code == 200
    assert whole.data == data
    assert whole.headers["Content-Type"].startswith("text/plain")
    assert whole.headers["Content-Disposition"] == 'attachment; filename="Quarterly report.txt"'
    etag = whole.headers["ETag"]
    assert [call.get("Range") for call in gets] == ["bytes=0-"]

    again = auth.client.get(f"/api/files/{file_id}/download", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""

    gets.clear()
    part = auth.client.get(f"/api/files/{file_id}/download", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.data == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    # The range went to S3: one GET from the first byte wanted, not the whole object.
    assert [call.get("Range") for call in gets] == ["bytes=100-"]


@pytest.mark.parametrize("s3_extra", [{"S3_PRESIGNED_DOWNLOADS": True}])
def test_presigned_download_redirects_to_a_url_that_serves_the_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    data = b"presigned bytes\n" * 64
    file_id = auth.upload("résumé.txt", data).get_json()["file_id"]
    worker()

    response = auth.client.get(f"/api/files/{file_id}/download")
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "private, no-store"
    location = response.headers["Location"]
    assert "X-Amz-Expires=60" in location
    with urllib.request.urlopen(location, timeout=10) as fetched:
        assert fetched.status == 200
        assert fetched.read() == data
        disposition = fetched.headers["Content-Disposition"]
        assert fetched.headers["Content-Type"] == "text/plain"
    assert disposition == attachment("résumé.txt")
    assert disposition == "attachment; filename=resume.txt; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"


def test_a_large_upload_goes_in_parts_and_leaves_no_multipart_upload(
    app: Flask, auth: Auth, s3: Any, bucket: str, prefix: str
) -> None:
    auth.register()
    parts = calls(app, "UploadPart")
    puts = calls(app, "PutObject")
    data = os.urandom(20 * MiB)
    response = raw_upload(auth, "big.bin", data)
    assert response.status_code == 201, response.get_json()
    # Parts of PART_SIZE went out as they filled (two may travel at once), the rest as
    # the last one.
    assert sorted(call["PartNumber"] for call in parts) == [1, 2, 3]
    assert PART_SIZE * 2 < len(data) <= PART_SIZE * 3
    assert puts == []
    (key,) = keys_in(s3, bucket, prefix)
    assert keys_in(s3, bucket, prefix)[key] == len(data)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert uploads_in(s3, bucket, prefix) == []


@pytest.mark.parametrize("size", [2 * MiB, 12 * MiB], ids=["one-put", "multipart"])
def test_a_quota_refused_upload_leaves_no_object(
    app: Flask, auth: Auth, s3: Any, bucket: str, prefix: str, size: int
) -> None:
    auth.register()
    run_sql(app, update(Organization).values(storage_quota_mb=1))
    response = raw_upload(auth, "too-much.bin", b"q" * size)
    assert response.status_code == 507
    assert response.get_json()["code"] == "quota_exceeded"
    assert keys_in(s3, bucket, prefix) == {}
    assert uploads_in(s3, bucket, prefix) == []
    assert usage(auth.client) == (0, 0)


@pytest.mark.parametrize("s3_extra", [{"MAX_FILE_SIZE_MB": 9}])
def test_a_too_large_upload_leaves_no_multipart_upload(
    app: Flask, auth: Auth, s3: Any, bucket: str, prefix: str
) -> None:
    auth.register()
    parts = calls(app, "UploadPart")
    response = raw_upload(auth, "huge.bin", b"h" * (9 * MiB + 1000))
    assert response.status_code == 413
    assert len(parts) >= 1  # a part had gone out before the limit was crossed
    assert keys_in(s3, bucket, prefix) == {}
    assert uploads_in(s3, bucket, prefix) == []
    assert usage(auth.client) == (0, 0)


@pytest.mark.parametrize("s3_secret", ["not-the-secret"])
def test_wrong_credentials_make_readyz_and_uploads_503(
    app: Flask, auth: Auth, s3: Any, bucket: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = auth.client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"].startswith("error: StorageUnavailable: S3 refused")
    assert bucket in body["checks"]["storage"]

    auth.register()
    response = auth.upload("a.txt", b"never stored\n")
    assert response.status_code == 503
    assert response.get_json()["code"] == "storage_unavailable"
    assert usage(auth.client) == (0, 0)
    assert auth.client.get("/api/files").get_json()["total"] == 0
    assert keys_in(s3, bucket, prefix) == {}
    # The fixture's consistency check reads the bucket with the right key.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    app.extensions[EXTENSION_KEY] = build(app.config)


class StopsTheStore(io.BytesIO):
    """A request body that stops the S3 server once `after` bytes have been read."""

    def __init__(self, body: bytes, after: int, stop: Callable[[], None]) -> None:
        super().__init__(body)
        self._after = after
        self._stop = stop
        self.stopped = False

    def _maybe_stop(self) -> None:
        if not self.stopped and self.tell() >= self._after:
            self._stop()
            self.stopped = True

    def read(self, size: int | None = -1) -> bytes:
        self._maybe_stop()
        return super().read(size)

    def read1(self, size: int = -1) -> bytes:
        self._maybe_stop()
        return super().read1(size)

    def readinto(self, buffer: Any) -> int:
        self._maybe_stop()
        return super().readinto(buffer)


def test_the_store_stopped_during_an_upload_is_503_and_check_fix_cleans_up(
    app: Flask,
    auth: Auth,
    seaweedfs: SeaweedFS,
    s3: Any,
    bucket: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth.register()
    parts = calls(app, "UploadPart")
    first_part_stored = stored(app, "UploadPart")
    body, content_type = multipart("cut.bin", os.urandom(20 * MiB))

    def stop_once_a_part_is_stored() -> None:
        # Parts travel while the next one fills: stop the store only once one is in it.
        assert first_part_stored.wait(30)
        seaweedfs.stop()

    stopped = StopsTheStore(body, PART_SIZE + MiB, stop_once_a_part_is_stored)
    try:
        response = auth.client.post(
            "/api/files/upload",
            input_stream=stopped,
            content_length=len(body),
            content_type=content_type,
            headers=auth.headers(),
        )
    finally:
        seaweedfs.start()
    assert stopped.stopped
    assert response.status_code == 503
    assert response.get_json()["code"] == "storage_unavailable"
    assert len(parts) >= 2  # the first part was stored, a later one failed
    assert usage(auth.client) == (0, 0)
    assert auth.client.get("/api/files").get_json()["total"] == 0
    # The store was down when the upload was aborted: its parts are still there.
    (left,) = uploads_in(s3, bucket, prefix)
    assert left.startswith(f"{prefix}{org_id(auth)}/") and left.endswith("/cut.bin")

    monkeypatch.setattr(storage_check, "GRACE_SECONDS", 0)  # as if 15 minutes had passed
    fixed = app.test_cli_runner().invoke(args=["storage", "check", "--fix"])
    assert "removed" in fixed.output, fixed.output
    assert uploads_in(s3, bucket, prefix) == []
    assert keys_in(s3, bucket, prefix) == {}
    clean = app.test_cli_runner().invoke(args=["storage", "check"])
    assert clean.exit_code == 0, clean.output


def test_storage_check_reports_an_orphan_and_a_missing_object(
    app: Flask, auth: Auth, s3: Any, bucket: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.register()
    kept = auth.upload("kept.txt", b"kept\n").get_json()["file_id"]
    lost = auth.upload("lost.txt", b"lost\n").get_json()["file_id"]
    organization = org_id(auth)
    s3.delete_object(Bucket=bucket, Key=f"{prefix}{organization}/{lost}/lost.txt")
    stray = f"{organization}/{uuid.uuid4()}/stray.txt"
    s3.put_object(Bucket=bucket, Key=f"{prefix}{stray}", Body=b"no row\n")
    # Outside the prefix: not Coffer's, never reported nor removed.
    theirs = f"someone-else-{prefix}file.txt"
    s3.put_object(Bucket=bucket, Key=theirs, Body=b"theirs")

    monkeypatch.setattr(storage_check, "GRACE_SECONDS", 0)  # the stray is old enough
    report = app.test_cli_runner().invoke(args=["storage", "check"])
    assert report.exit_code == 1, report.output
    assert f"s3://{bucket}/{prefix} at " in report.output
    assert f"bytes on disk without a row: 1\n  {stray} (7 bytes" in report.output
    assert "rows whose bytes are missing" in report.output and f"file {lost}" in report.output
    assert theirs not in report.output

    fixed = app.test_cli_runner().invoke(args=["storage", "check", "--fix"])
    assert "- removed" in fixed.output, fixed.output
    assert set(keys_in(s3, bucket, prefix)) == {f"{prefix}{organization}/{kept}/kept.txt"}
    assert theirs in keys_in(s3, bucket, theirs)
    # The row without its bytes is an operator's call: deleting the file settles it.
    assert auth.client.delete(f"/api/files/{lost}", headers=auth.headers()).status_code == 204
    assert auth.client.delete(f"/api/trash/{lost}", headers=auth.headers()).status_code == 204


def test_settings_are_checked_at_start(tmp_path: Path) -> None:
    from app.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="^STORAGE_BACKEND must be local or s3, not 'ftp'$"):
        load_config({"STORAGE_BACKEND": "ftp"})
    with pytest.raises(ConfigError, match="^S3_BUCKET must be set when STORAGE_BACKEND=s3$"):
        load_config({"STORAGE_BACKEND": "s3", "S3_BUCKET": ""})
