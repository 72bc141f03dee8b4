"""`manage.py storage migrate --to s3|local`: every stored file copied to the other backend,
verified, safe to run again, and the deployment switched over without losing a byte."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.extensions import db as _db
from app.storage import get_storage
from tests.support.client import Auth
from tests.support.s3 import SeaweedFS, keys_in

FILES = 6


@pytest.fixture
def bucket(s3_bucket: str) -> str:
    """The run's bucket for tests with their own S3 settings."""
    return s3_bucket


@pytest.fixture
def prefix() -> str:
    """A part of the bucket for one test."""
    return f"migrate-{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def app_overrides(
    s3_server: SeaweedFS, bucket: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A local deployment with the S3 settings already set beside it (step 1 of DEPLOY.md)."""
    environment = s3_server.environment(bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", environment["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", environment["AWS_SECRET_ACCESS_KEY"])
    return {
        "STORAGE_BACKEND": "local",
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": environment["S3_ENDPOINT_URL"],
        "S3_REGION": environment["S3_REGION"],
        "S3_PREFIX": prefix,
    }


@pytest.fixture
def other_apps() -> Iterator[list[Flask]]:
    """Apps a test builds on the same database; their connections closed afterwards."""
    apps: list[Flask] = []
    yield apps
    for other in apps:
        with other.app_context():
            _db.engine.dispose()


def upload_files(auth: Auth, count: int) -> dict[str, bytes]:
    """Upload `count` text files; their ids and bytes."""
    sent = {}
    for n in range(count):
        data = f"line {n}\n".encode() * (200 * (n + 1))
        response = auth.upload(f"doc-{n}.txt", data)
        assert response.status_code == 201, response.get_json()
        sent[response.get_json()["file_id"]] = data
    return sent


def test_migrate_to_s3_copies_verifies_resumes_and_the_switch_loses_nothing(
    app: Flask,
    auth: Auth,
    runner: Any,
    worker: Callable[[], None],
    s3_server: SeaweedFS,
    bucket: str,
    prefix: str,
    other_apps: list[Flask],
) -> None:
    auth.register()
    sent = upload_files(auth, FILES)
    worker()
    pending = upload_files(auth, 1)  # not validated yet: no sha256 in its row
    org = auth.client.get("/api/org").get_json()["id"]
    keys = {f"{org}/{file_id}/doc-{n}.txt" for n, file_id in enumerate(sent)}
    keys.add(f"{org}/{next(iter(pending))}/doc-0.txt")

    first = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert first.exit_code == 0, first.output
    assert f"copied {FILES + 1} file(s)" in first.output
    assert "set STORAGE_BACKEND=s3" in first.output
    client = s3_server.client()
    assert set(keys_in(client, bucket, prefix)) == {prefix + key for key in keys}

    # Interrupted and damaged: one copy missing, another with the right size and wrong bytes.
    missing, damaged = sorted(keys)[:2]
    client.delete_object(Bucket=bucket, Key=prefix + missing)
    size = client.head_object(Bucket=bucket, Key=prefix + damaged)["ContentLength"]
    client.put_object(Bucket=bucket, Key=prefix + damaged, Body=b"x" * size)
    again = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert again.exit_code == 0, again.output
    assert "copied 2 file(s)" in again.output
    assert f"{FILES - 1} already there" in again.output

    # The switch: the same database and settings with STORAGE_BACKEND=s3.
    switched = create_app({**app.config, "STORAGE_BACKEND": "s3"})
    other_apps.append(switched)
    reader = switched.test_client()
    login = reader.post(
        "/api/auth/login", json={"email": "admin@acme.test", "password": Auth.password}
    )
    assert login.status_code == 200
    for file_id, data in sent.items():
        download = reader.get(f"/api/files/{file_id}/download")
        assert download.status_code == 200
        assert download.data == data
        assert download.headers["ETag"].strip('"') == hashlib.sha256(data).hexdigest()
        download.close()
    check = switched.test_cli_runner().invoke(args=["storage", "check"])
    assert check.exit_code == 0, check.output
    assert "storage is consistent" in check.output


def test_migrate_to_local_copies_back_and_a_missing_source_is_reported(
    app: Flask,
    auth: Auth,
    worker: Callable[[], None],
    s3_server: SeaweedFS,
    bucket: str,
    prefix: str,
    other_apps: list[Flask],
) -> None:
    auth.register()
    sent = upload_files(auth, 3)
    worker()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["storage", "migrate", "--to", "s3"]).exit_code == 0
    on_s3 = create_app({**app.config, "STORAGE_BACKEND": "s3"})
    other_apps.append(on_s3)
    org = auth.client.get("/api/org").get_json()["id"]
    lost = next(iter(sent))
    # The local copy of one file goes away; migrating back to local restores it.
    with app.app_context():
        get_storage().remove(f"{org}/{lost}/doc-0.txt")
    back = on_s3.test_cli_runner().invoke(args=["storage", "migrate", "--to", "local"])
    assert back.exit_code == 0, back.output
    assert "copied 1 file(s)" in back.output and "2 already there" in back.output
    assert "STORAGE_BACKEND=local" in back.output
    download = auth.client.get(f"/api/files/{lost}/download")
    assert download.data == sent[lost]
    download.close()

    # A file whose bytes are in neither place cannot be copied: named, exit 1.
    s3_server.client().delete_object(Bucket=bucket, Key=f"{prefix}{org}/{lost}/doc-0.txt")
    with app.app_context():
        get_storage().remove(f"{org}/{lost}/doc-0.txt")
    broken = runner.invoke(args=["storage", "migrate", "--to", "s3"])
    assert broken.exit_code == 1
    assert lost in broken.output
    # Leave local storage consistent for the fixture's check: delete the broken file.
    assert auth.client.delete(f"/api/files/{lost}", headers=auth.headers()).status_code == 204
    assert auth.client.delete(f"/api/trash/{lost}", headers=auth.headers()).status_code == 204
