"""The validation pipeline on real RQ workers: verdicts, idempotence, retries, sweeps."""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.suspension import resume, suspend
from sqlalchemy import update

from app.broker import get_queue
from app.files.sweep import requeue_stuck
from app.models import Organization
from app.services.queue import enqueue_validation, job_id
from jobs.worker import InProcessWorker
from jobs.worker import run as run_worker
from tests.support.client import Auth, usage
from tests.support.database import run_sql
from tests.support.processes import RedisServer
from tests.support.storage import stored_bytes, stored_key, stored_objects


def png_bytes() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def upload(auth: Auth, filename: str, data: bytes, headers: dict[str, str] | None = None) -> str:
    """Upload a file and return its id, asserting the immediate pending answer."""
    response = auth.upload(filename, data, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "pending"
    return response.get_json()["file_id"]


def details(auth: Auth, file_id: str) -> dict[str, Any]:
    """GET /api/files/<id>."""
    response = auth.client.get(f"/api/files/{file_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stored_path(app: Flask, file_id: str) -> Path:
    """Where a file's bytes are (its per-file folder holds exactly one entry)."""
    (entry,) = [p for p in Path(app.config["UPLOAD_FOLDER"]).glob(f"*/{file_id}/*")]
    return entry


def run_worker_with_scheduler(app: Flask, redis: Redis) -> None:
    """A burst worker that first moves due scheduled jobs (retries) onto the queue."""
    with app.app_context():
        InProcessWorker([get_queue(redis)], connection=redis).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )


# ---- verdicts ------------------------------------------------------------------------


def test_text_file_ends_ready(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    data = b"Coffer keeps files.\nSecond line.\n"
    file_id = upload(auth, "notes.txt", data)
    assert details(auth, file_id)["processed_at"] is None

    worker()

    body = details(auth, file_id)
    assert body["status"] == "ready"
    assert body["mime_type"] == "text/plain"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["processed_at"] is not None
    assert body["error_message"] is None


def test_real_png_ends_ready_as_image_png(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "pixel.png", png_bytes())

    worker()

    body = details(auth, file_id)
    assert (body["status"], body["mime_type"]) == ("ready", "image/png")


def test_png_name_holding_text_ends_failed(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "holiday.png", b"this is not a picture\n")

    worker()

    body = details(auth, file_id)
    assert body["status"] == "failed"
    assert body["error_message"] == "content is text/plain but .png expects image/png"
    assert body["processed_at"] is not None
    # Failed files keep their bytes and their place in the quota by default.
    assert usage(auth) == (22, 1)


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("photo.jpg", png_bytes(), "content is image/png but .jpg expects image/jpeg"),
        ("notes.txt", bytes(range(256)) * 4, "but .txt expects text/plain"),
        ("archive.zip", b"plain words\n", "content is text/plain but .zip expects application/zip"),
    ],
)
def test_content_that_disagrees_with_the_extension_fails(
    app: Flask,
    auth: Auth,
    worker: Callable[[], None],
    filename: str,
    data: bytes,
    message: str,
) -> None:
    auth.register()
    file_id = upload(auth, filename, data)

    worker()

    body = details(auth, file_id)
    assert body["status"] == "failed"
    assert body["error_message"].startswith("content is ")
    assert body["error_message"].endswith(message)
    assert body["mime_type"] is None


@pytest.mark.parametrize(
    ("filename", "data", "mime_type"),
    [
        ("data.zqx", b"plain words in a file\n", "text/plain"),
        ("image.unknownext", png_bytes(), "image/png"),
        ("README", b"no extension at all\n", "text/plain"),
    ],
)
def test_unknown_extension_takes_the_detected_type(
    app: Flask,
    auth: Auth,
    worker: Callable[[], None],
    filename: str,
    data: bytes,
    mime_type: str,
) -> None:
    auth.register()
    file_id = upload(auth, filename, data)

    worker()

    body = details(auth, file_id)
    assert (body["status"], body["mime_type"]) == ("ready", mime_type)


def test_text_formats_keep_their_own_type(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    json_id = upload(auth, "data.json", b'{"a": [1, 2, 3]}\n')
    csv_id = upload(auth, "table.csv", b"a,b\n1,2\n")

    worker()

    assert details(auth, json_id)["mime_type"] == "application/json"
    assert details(auth, csv_id)["mime_type"] == "text/csv"
    assert details(auth, csv_id)["status"] == "ready"


# ---- idempotence ---------------------------------------------------------------------


def test_running_a_job_again_changes_nothing(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    ready = upload(auth, "ready.txt", b"fine\n")
    failed = upload(auth, "broken.png", b"text\n")
    worker()
    before = {file_id: details(auth, file_id) for file_id in (ready, failed)}
    org_id = auth.client.get("/api/org").get_json()["id"]

    with app.app_context():
        for file_id in (ready, failed):
            assert enqueue_validation(file_id, org_id)
    worker()

    assert {file_id: details(auth, file_id) for file_id in (ready, failed)} == before
    for file_id in (ready, failed):
        job = Job.fetch(job_id(file_id), connection=redis)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == before[file_id]["status"]
    assert usage(auth) == (10, 2)


def test_file_deleted_before_its_job_runs_is_harmless(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "short-lived.txt", b"bye\n")
    assert auth.client.delete(f"/api/files/{file_id}", headers=auth.headers()).status_code == 204
    # Out of the trash too, for good.
    assert auth.client.delete(f"/api/trash/{file_id}", headers=auth.headers()).status_code == 204

    worker()

    job = Job.fetch(job_id(file_id), connection=redis)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "deleted"
    assert FailedJobRegistry(queue=get_queue(redis)).count == 0
    assert usage(auth) == (0, 0)
    assert auth.client.get(f"/api/files/{file_id}").status_code == 404


# ---- retries -------------------------------------------------------------------------


class TestTransientErrors:
    """A stored file that cannot be read for a while: retried, then given up on."""

    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        """One retry, one second after the first attempt; local storage, whose files the
        tests make unreadable."""
        return {"JOB_RETRY_INTERVALS": [1], "STORAGE_BACKEND": "local"}

    def test_transient_error_is_retried_and_then_succeeds(
        self, app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
    ) -> None:
        auth.register()
        data = b"will be readable again\n"
        file_id = upload(auth, "flaky.txt", data)
        path = stored_path(app, file_id)
        # A directory where the file should be: open() fails with an OSError.
        path.unlink()
        path.mkdir()

        worker()

        body = details(auth, file_id)
        assert body["status"] == "processing"
        assert body["error_message"] is None
        job = Job.fetch(job_id(file_id), connection=redis)
        assert job.get_status() == JobStatus.SCHEDULED
        assert job.id in ScheduledJobRegistry(queue=get_queue(redis)).get_job_ids()

        path.rmdir()
        path.write_bytes(data)
        time.sleep(1.1)  # until the retry is due
        run_worker_with_scheduler(app, redis)

        body = details(auth, file_id)
        assert (body["status"], body["mime_type"]) == ("ready", "text/plain")
        assert body["error_message"] is None
        assert FailedJobRegistry(queue=get_queue(redis)).count == 0


# A directory in place of the file's bytes is a local-disk fault: local storage here.
@pytest.mark.parametrize("app_overrides", [{"STORAGE_BACKEND": "local"}], ids=["local"])
def test_exhausted_retries_fail_the_job_and_the_file(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    data = b"never readable\n"
    file_id = upload(auth, "stuck.txt", data)
    path = stored_path(app, file_id)
    path.unlink()
    path.mkdir()

    worker()

    registry = FailedJobRegistry(queue=get_queue(redis))
    assert registry.get_job_ids() == [job_id(file_id)]
    job = Job.fetch(job_id(file_id), connection=redis)
    # JOB_RETRY_INTERVALS has two entries in tests: three attempts in all.
    assert job.retries_left == 0
    body = details(auth, file_id)
    assert body["status"] == "failed"
    assert body["error_message"] == (
        "validation could not complete: the stored file could not be read (Is a directory)"
    )
    # The owner is never shown where the server keeps files.
    assert app.config["UPLOAD_FOLDER"] not in body["error_message"]
    path.rmdir()
    path.write_bytes(data)


# ---- DELETE_FAILED_FILES and quota ---------------------------------------------------


class TestDeleteFailedFiles:
    """DELETE_FAILED_FILES=true drops the bytes of failed files."""

    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        """Failed files lose their bytes."""
        return {"DELETE_FAILED_FILES": True}

    def test_failed_files_lose_their_bytes_and_quota_but_keep_their_row(
        self, app: Flask, auth: Auth, worker: Callable[[], None]
    ) -> None:
        auth.register()
        good = upload(auth, "good.txt", b"good\n")
        bad = upload(auth, "bad.png", b"not a png at all\n")
        bad_key = stored_key(app, bad)
        assert usage(auth) == (5 + 17, 2)

        worker()

        assert details(auth, good)["status"] == "ready"
        body = details(auth, bad)
        assert body["status"] == "failed"
        assert body["error_message"] == "content is text/plain but .png expects image/png"
        assert bad_key not in stored_objects(app)
        assert stored_bytes(app, stored_key(app, good)) == b"good\n"
        # Bytes freed; the failed file is still listed and counted.
        assert usage(auth) == (5, 2)
        with auth.client.get(f"/api/files/{bad}/download") as response:
            assert response.status_code == 409

        assert auth.client.delete(f"/api/files/{bad}", headers=auth.headers()).status_code == 204
        assert usage(auth) == (5, 1)

    # Local: the test makes the stored file unreadable with a directory in its place.
    @pytest.mark.parametrize(
        "app_overrides",
        [{"DELETE_FAILED_FILES": True, "STORAGE_BACKEND": "local"}],
        ids=["local"],
    )
    def test_a_file_whose_retries_ran_out_keeps_its_bytes_and_can_be_saved(
        self, app: Flask, auth: Auth, runner: Any, worker: Callable[[], None]
    ) -> None:
        """Giving up is no verdict on the content: the bytes stay for `jobs requeue-failed`."""
        auth.register()
        data = b"readable again after the operator fixes the disk\n"
        file_id = upload(auth, "later.txt", data)
        path = stored_path(app, file_id)
        path.unlink()
        path.mkdir()  # unreadable on every attempt

        worker()

        assert details(auth, file_id)["status"] == "failed"
        assert usage(auth) == (len(data), 1)  # still held: the bytes are kept
        path.rmdir()
        path.write_bytes(data)
        result = runner.invoke(args=["jobs", "requeue-failed"])
        assert result.exit_code == 0, result.output
        worker()

        body = details(auth, file_id)
        assert (body["status"], body["error_message"]) == ("ready", None)
        with auth.client.get(f"/api/files/{file_id}/download") as response:
            assert response.data == data


def test_quota_lowered_after_upload_fails_the_file(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "late.txt", b"uploaded while there was room\n")
    org_id = auth.client.get("/api/org").get_json()["id"]
    run_sql(app, update(Organization).where(Organization.id == org_id).values(storage_quota_mb=0))

    worker()

    body = details(auth, file_id)
    assert body["status"] == "failed"
    assert "quota" in body["error_message"]
    assert body["processed_at"] is not None


def test_file_within_a_lowered_quota_still_passes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "small.txt", b"small\n")
    org_id = auth.client.get("/api/org").get_json()["id"]
    run_sql(app, update(Organization).where(Organization.id == org_id).values(storage_quota_mb=1))

    worker()

    assert details(auth, file_id)["status"] == "ready"


def test_suspended_workers_leave_uploads_pending_until_resumed(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    first = upload(auth, "first.txt", b"first\n")
    worker()
    second = upload(auth, "second.txt", b"second\n")
    suspend(redis)  # what `rq suspend` does

    worker()

    assert details(auth, second)["status"] == "pending"
    resume(redis)
    worker()
    assert [details(auth, f)["status"] for f in (first, second)] == ["ready", "ready"]


# ---- the sweep -----------------------------------------------------------------------


def test_sweep_does_not_double_queue_a_queued_job(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = upload(auth, "queued.txt", b"queued\n")
    queue = get_queue(redis)
    assert queue.job_ids == [job_id(file_id)]

    with app.app_context():
        assert requeue_stuck() == []

    assert queue.job_ids == [job_id(file_id)]
    worker()
    assert details(auth, file_id)["status"] == "ready"


def test_sweep_queues_a_file_whose_job_was_lost(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    auth.register()
    done = upload(auth, "done.txt", b"done\n")
    worker()
    lost = upload(auth, "lost.txt", b"lost\n")
    # The job vanishes from Redis (flushed, evicted, restored from an old snapshot).
    Job.fetch(job_id(lost), connection=redis).delete()
    worker()
    assert details(auth, lost)["status"] == "pending"

    with app.app_context():
        swept = requeue_stuck()

    # Only the pending file is queued; a ready one never is.
    assert swept == [lost]
    worker()
    assert details(auth, lost)["status"] == "ready"
    assert details(auth, done)["status"] == "ready"


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "forking"])
def test_worker_start_sweeps_lost_jobs_then_validates(
    app: Flask, auth: Auth, redis: Redis, fork: bool
) -> None:
    auth.register()
    lost = upload(auth, "lost.txt", b"lost\n")
    queued = upload(auth, "queued.png", png_bytes())
    Job.fetch(job_id(lost), connection=redis).delete()

    # The entry point `manage.py worker` runs, in burst mode.
    run_worker(app, burst=True, fork=fork)

    assert details(auth, lost)["status"] == "ready"
    assert details(auth, queued)["mime_type"] == "image/png"
    assert get_queue(redis).count == 0


class TestRedisDownAtUpload:
    """Uploads keep working while Redis is down; the sweep catches up afterwards."""

    @pytest.fixture
    def private_redis(self, tmp_path: Path) -> Iterator[RedisServer]:
        """A Redis of this test alone, which the test stops and starts."""
        server = RedisServer(tmp_path / "private-redis")
        server.start()
        yield server
        server.stop()

    @pytest.fixture
    def app_overrides(self, private_redis: RedisServer) -> dict[str, Any]:
        """The app talks to the private Redis."""
        return {"REDIS_URL": private_redis.url}

    def test_upload_while_redis_is_down_is_queued_by_the_sweep(
        self,
        app: Flask,
        auth: Auth,
        private_redis: RedisServer,
        runner: Any,
        worker: Callable[[], None],
    ) -> None:
        auth.register()
        bearer = {"Authorization": f"Bearer {auth.token()}"}
        private_redis.stop()

        script = Auth(app, app.test_client())
        response = script.upload("offline.txt", b"uploaded without redis\n", headers=bearer)

        assert response.status_code == 201
        assert response.get_json()["status"] == "pending"
        file_id = response.get_json()["file_id"]

        private_redis.start()
        # Sessions lived in the Redis that was lost.
        assert auth.login().status_code == 200
        assert get_queue(app.extensions["redis"]).count == 0

        result = runner.invoke(args=["jobs", "requeue-stuck"])

        assert result.exit_code == 0, result.output
        assert "requeued 1 stuck file(s)" in result.output
        assert get_queue(app.extensions["redis"]).job_ids == [job_id(file_id)]
        worker()
        body = details(auth, file_id)
        assert (body["status"], body["mime_type"]) == ("ready", "text/plain")
        # A second sweep finds nothing left to do.
        assert "requeued 0 stuck file(s)" in runner.invoke(args=["jobs", "requeue-stuck"]).output

    def test_sweep_in_code_queues_the_pending_file(
        self,
        app: Flask,
        auth: Auth,
        private_redis: RedisServer,
        worker: Callable[[], None],
    ) -> None:
        auth.register()
        bearer = {"Authorization": f"Bearer {auth.token()}"}
        private_redis.stop()
        script = Auth(app, app.test_client())
        file_id = upload(script, "offline.bin", b"\x00\x01\x02", bearer)

        private_redis.start()
        with app.app_context():
            assert requeue_stuck() == [file_id]
        worker()
        assert auth.login().status_code == 200

        assert details(auth, file_id)["status"] == "ready"
