"""Pipeline helpers shared by the fault and self-healing tests: text files, uploads by
token or cookie, real worker processes' environment, and the "nothing lost" check."""

from __future__ import annotations

import os
import random
import string
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq.job import Job, JobStatus
from rq.worker import Worker
from sqlalchemy import select

from app.config import MiB
from app.extensions import db as _db
from app.models import File, FileStatus, Organization
from tests.support.client import Auth, bearer, multipart
from tests.support.processes import ManagedProcess
from tests.support.storage import check_storage_consistent, stored_objects

FINAL_STATUSES = {FileStatus.READY.value, FileStatus.FAILED.value}


def text_bytes(size: int, seed: int) -> bytes:
    """`size` bytes of plain text (lines of random words), different for every seed."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(400)]
    lines = [" ".join(rng.choices(words, k=10)) for _ in range(200)]
    block = ("\n".join(lines) + "\n").encode()
    return (block * (size // len(block) + 1))[:size]


def post_file(client: FlaskClient, filename: str, data: bytes, headers: dict[str, str]) -> Any:
    """POST /api/files/upload with a ready-made multipart body.

    Built here rather than by the test client, whose encoder spools bodies over 500 KiB
    to a temporary file that nothing closes.
    """
    body, kind = multipart(filename, data, "text/plain")
    return client.post("/api/files/upload", data=body, headers=headers, content_type=kind)


def upload_as(client: FlaskClient, token: str, filename: str, data: bytes) -> Any:
    """Upload with a bearer token (no cookie, no CSRF)."""
    return post_file(client, filename, data, bearer(token))


def upload(auth: Auth, filename: str, data: bytes) -> Any:
    """Upload as the logged-in user of `auth` (session cookie and CSRF token)."""
    return post_file(auth.client, filename, data, auth.headers())


def files_under(root: Path) -> list[Path]:
    """Every file under a folder, the temporary area included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_nothing_lost(app: Flask) -> None:
    """Every file ready or failed, usage equal to the bytes stored, disk equal to the rows."""
    with app.app_context():
        rows = _db.session.scalars(select(File)).all()
        orgs = _db.session.scalars(select(Organization)).all()
        _db.session.remove()
    stuck = {row.id: row.status for row in rows if row.status not in FINAL_STATUSES}
    assert not stuck, f"files left neither ready nor failed: {stuck}"
    for org in orgs:
        own = [row for row in rows if row.organization_id == org.id]
        assert org.used_bytes == sum(row.size for row in own if row.bytes_stored), org.name
        assert org.file_count == len(own), org.name
        assert org.used_bytes <= org.storage_quota_mb * MiB, f"{org.name} is over its quota"
    sizes = stored_objects(app)
    for row in rows:
        if row.bytes_stored:
            assert sizes[row.file_path] == row.size, row.filename
    check_storage_consistent(app)


def process_env(app: Flask, **extra: str) -> dict[str, str]:
    """The environment of a `manage.py` process on the test's database, Redis and folders."""
    config = app.config
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": config["REDIS_URL"],
            "UPLOAD_FOLDER": config["UPLOAD_FOLDER"],
            # The same backend (and, on s3, the same part of the bucket) as the app.
            "STORAGE_BACKEND": config["STORAGE_BACKEND"],
            "S3_PREFIX": config["S3_PREFIX"],
            "INSTANCE_PATH": config["INSTANCE_PATH"],
            "STORAGE_QUOTA_MB": str(config["STORAGE_QUOTA_MB"]),
            "MAX_FILE_SIZE_MB": str(config["MAX_FILE_SIZE_MB"]),
            "JOB_RETRY_INTERVALS": ",".join(str(s) for s in config["JOB_RETRY_INTERVALS"]),
            "BCRYPT_ROUNDS": str(config["BCRYPT_ROUNDS"]),
            # Deliveries to a test's receiver on 127.0.0.1 need the same setting as the app.
            "WEBHOOK_ALLOW_PRIVATE": "true" if config["WEBHOOK_ALLOW_PRIVATE"] else "false",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def job_started_on(worker: ManagedProcess, job: str, redis: Redis) -> bool:
    """Whether RQ records this job STARTED by this worker process, and the process lives."""
    record = Job.fetch(job, connection=redis)
    if record.get_status() != JobStatus.STARTED or not record.worker_name:
        return False
    # The worker's registration, read as a hash: RQ's Worker objects would change the
    # shared client's socket timeout.
    pid = redis.hget(Worker.redis_worker_namespace_prefix + record.worker_name, "pid")
    return pid is not None and int(pid) == worker.pid and worker.popen.poll() is None


def all_final(client: FlaskClient, headers: dict[str, str] | None = None) -> bool:
    """Whether no file of the caller's organization is pending or processing."""
    for status in ("pending", "processing"):
        response = client.get(f"/api/files?status={status}&limit=1", headers=headers or {})
        if response.get_json()["total"]:
            return False
    return True
