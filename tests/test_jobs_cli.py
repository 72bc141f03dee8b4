"""`manage.py jobs ...`: queue status, and giving failed or lost validations another run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry

from app.broker import get_queue
from app.services.queue import job_id
from tests.support.client import Auth


def upload(auth: Auth, filename: str, data: bytes) -> str:
    """Upload a file and return its id."""
    response = auth.upload(filename, data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["file_id"]


def details(auth: Auth, file_id: str) -> dict[str, Any]:
    """GET /api/files/<id>."""
    return auth.client.get(f"/api/files/{file_id}").get_json()


def invoke(runner: FlaskCliRunner, *args: str) -> list[str]:
    """Run a `jobs` command; its output lines."""
    result = runner.invoke(args=["jobs", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def make_unreadable(app: Flask, file_id: str) -> tuple[Path, bytes]:
    """Put a directory where a file's bytes are, so reading them fails; (path, bytes)."""
    (path,) = Path(app.config["UPLOAD_FOLDER"]).glob(f"*/{file_id}/*")
    data = path.read_bytes()
    path.unlink()
    path.mkdir()
    return path, data


def restore(path: Path, data: bytes) -> None:
    """Put a file's bytes back in place of the directory."""
    path.rmdir()
    path.write_bytes(data)


# A directory in place of the file's bytes is a local-disk fault: local storage here.
@pytest.mark.parametrize("app_overrides", [{"STORAGE_BACKEND": "local"}], ids=["local"])
def test_status_counts_jobs_and_files(
    app: Flask, auth: Auth, runner: FlaskCliRunner, worker: Callable[[], None]
) -> None:
    auth.register()
    assert invoke(runner, "status") == [
        "queued: 0",
        "started: 0",
        "failed: 0",
        "files pending: 0",
        "files processing: 0",
        "files ready: 0",
        "files failed: 0",
    ]
    upload(auth, "good.txt", b"good\n")
    upload(auth, "wrong.png", b"not a picture\n")
    stuck = upload(auth, "stuck.txt", b"stuck\n")
    path, data = make_unreadable(app, stuck)

    assert invoke(runner, "status") == [
        "queued: 3",
        "started: 0",
        "failed: 0",
        "files pending: 3",
        "files processing: 0",
        "files ready: 0",
        "files failed: 0",
    ]
    worker()

    assert invoke(runner, "status") == [
        "queued: 0",
        "started: 0",
        "failed: 1",
        "files pending: 0",
        "files processing: 0",
        "files ready: 1",
        "files failed: 2",
    ]
    restore(path, data)


# A directory in place of the file's bytes is a local-disk fault: local storage here.
@pytest.mark.parametrize("app_overrides", [{"STORAGE_BACKEND": "local"}], ids=["local"])
def test_requeue_failed_gives_the_job_another_run(
    app: Flask, auth: Auth, runner: FlaskCliRunner, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "flaky.txt", b"readable later\n")
    path, data = make_unreadable(app, file_id)
    worker()
    registry = FailedJobRegistry(queue=get_queue(redis))
    assert registry.get_job_ids() == [job_id(file_id)]
    assert details(auth, file_id)["status"] == "failed"
    restore(path, data)

    assert invoke(runner, "requeue-failed") == ["requeued 1 failed job(s)"]

    body = details(auth, file_id)
    assert body["status"] == "pending"
    assert body["error_message"] is None
    assert body["processed_at"] is None
    assert registry.count == 0
    assert get_queue(redis).job_ids == [job_id(file_id)]
    worker()
    body = details(auth, file_id)
    assert (body["status"], body["mime_type"]) == ("ready", "text/plain")
    assert registry.count == 0
    assert invoke(runner, "requeue-failed") == ["requeued 0 failed job(s)"]


def test_requeue_failed_leaves_files_failed_for_their_content_alone(
    app: Flask, auth: Auth, runner: FlaskCliRunner, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "fake.png", b"text\n")
    worker()

    # A verdict on the content is not a failed job: nothing to run again.
    assert invoke(runner, "requeue-failed") == ["requeued 0 failed job(s)"]
    assert details(auth, file_id)["status"] == "failed"


def test_requeue_stuck_queues_files_whose_job_is_gone(
    app: Flask, auth: Auth, runner: FlaskCliRunner, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    lost = upload(auth, "lost.txt", b"lost\n")
    queued = upload(auth, "queued.txt", b"queued\n")
    Job.fetch(job_id(lost), connection=redis).delete()
    assert get_queue(redis).job_ids == [job_id(queued)]

    assert invoke(runner, "requeue-stuck") == ["requeued 1 stuck file(s)"]

    # The file whose job was still queued is not queued twice.
    assert sorted(get_queue(redis).job_ids) == sorted([job_id(lost), job_id(queued)])
    worker()
    assert details(auth, lost)["status"] == details(auth, queued)["status"] == "ready"
    assert invoke(runner, "requeue-stuck") == ["requeued 0 stuck file(s)"]
