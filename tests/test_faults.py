"""Faults: a killed worker, a Redis outage, a failing database, a full disk and races.

Each test ends with nothing lost and no file stuck: every file ready or failed, no bytes
without a row, no row without bytes, and each organization's usage equal to its stored bytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask
from redis import Redis
from rq.job import Job, JobStatus
from sqlalchemy import select

from app.broker import get_queue
from app.config import MiB
from app.database import WriterLock, writer_lock
from app.extensions import db as _db
from app.models import File
from app.services.queue import job_id
from app.storage import get_storage
from app.storage import local as local_storage
from app.storage.local import LocalStorage, LocalUpload
from tests.support.client import Auth, bearer, multipart, tokens_of_two_organizations, usage
from tests.support.database import file_rows_refused, validation_blocked
from tests.support.pipeline import (
    all_final,
    assert_nothing_lost,
    files_under,
    job_started_on,
    process_env,
    text_bytes,
    upload,
    upload_as,
)
from tests.support.processes import RedisServer, free_port, managed
from tests.support.storage import pending_uploads, stored_objects
from tests.support.traffic import call, served
from tests.support.tus import TUS, create
from tests.support.tus import patch as tus_patch
from tests.support.waiting import wait_for

KiB = 1024
# Longest any wait below may take before the test fails; far above what a healthy run needs.
WAIT_SECONDS = 90


# ---- 1. a worker killed mid-job --------------------------------------------------------


@pytest.mark.slow
def test_worker_killed_mid_job_is_replaced_and_its_file_ends_ready(
    app: Flask, auth: Auth, redis: Redis, tmp_path: Path
) -> None:
    """A worker SIGKILLed mid-job, with its whole session: a new worker finishes the file."""
    auth.register()
    big = text_bytes(16 * MiB, seed=1)
    held = upload(auth, "big.txt", big).get_json()["file_id"]
    small = [
        upload(auth, f"note-{n}.txt", text_bytes(8 * KiB, seed=10 + n)).get_json()["file_id"]
        for n in range(3)
    ]
    env = process_env(app)

    with validation_blocked(app.config["SQLALCHEMY_DATABASE_URI"], held):
        with managed(["worker"], env, tmp_path / "worker-1.log") as first:
            wait_for(
                lambda: job_started_on(first, job_id(held), redis),
                WAIT_SECONDS,
                "the first worker to start the big file's job",
            )
            first.kill()
        # The killed job still looks started; nothing else will ever finish it.
        assert Job.fetch(job_id(held), connection=redis).get_status() == JobStatus.STARTED
    assert auth.client.get(f"/api/files/{held}").get_json()["status"] in {"pending", "processing"}

    # The replacement's start-up sweep sees that the job's worker is dead and queues it again.
    with managed(["worker"], env, tmp_path / "worker-2.log") as second:
        wait_for(
            lambda: all_final(auth.client),
            WAIT_SECONDS,
            "every file to be validated after the restart",
        )
        log = second.output()

    details = auth.client.get(f"/api/files/{held}").get_json()
    assert details["status"] == "ready", (details, log)
    assert details["sha256"] == hashlib.sha256(big).hexdigest()
    download = auth.client.get(f"/api/files/{held}/download")
    assert download.status_code == 200
    assert hashlib.sha256(download.data).digest() == hashlib.sha256(big).digest()
    download.close()
    for file_id in small:
        assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"
    assert usage(auth.client) == (len(big) + 3 * 8 * KiB, 4)
    assert_nothing_lost(app)


# ---- 2. Redis stopped while uploads arrive ---------------------------------------------


class TestRedisOutage:
    """An app on a Redis of its own, which the test stops and starts again."""

    @pytest.fixture
    def app_overrides(self, own_redis: RedisServer) -> dict[str, Any]:
        """The app talks to the test's own Redis."""
        return {"REDIS_URL": own_redis.url}

    def test_token_uploads_during_a_redis_outage_are_kept_and_validated_after_it(
        self,
        app: Flask,
        auth: Auth,
        own_redis: RedisServer,
        runner: Any,
        worker: Callable[[], None],
    ) -> None:
        """Token uploads answer 201 while Redis is down and are validated once it is back."""
        auth.register()
        token = auth.token()
        script = app.test_client()  # a script: its token, no session cookie
        sent: dict[str, bytes] = {}

        own_redis.stop()
        try:
            readiness = script.get("/readyz")
            assert readiness.status_code == 503
            assert readiness.get_json()["checks"]["redis"] != "ok"
            for n in range(3):
                data = text_bytes(20 * KiB + n, seed=20 + n)
                response = upload_as(script, token, f"outage-{n}.txt", data)
                assert response.status_code == 201, response.get_json()
                assert response.get_json()["status"] == "pending"
                sent[response.get_json()["file_id"]] = data
            listing = script.get("/api/files", headers=bearer(token)).get_json()
            assert {f["id"]: f["status"] for f in listing["files"]} == dict.fromkeys(
                sent, "pending"
            )
        finally:
            own_redis.start()  # the same port again

        result = runner.invoke(args=["jobs", "requeue-stuck"])
        assert result.exit_code == 0, result.output
        assert "requeued 3 stuck file(s)" in result.output
        worker()

        for file_id, data in sent.items():
            details = script.get(f"/api/files/{file_id}", headers=bearer(token)).get_json()
            assert details["status"] == "ready", details
            download = script.get(f"/api/files/{file_id}/download", headers=bearer(token))
            assert download.data == data
            download.close()
        assert usage(script, bearer(token)) == (sum(map(len, sent.values())), 3)
        assert_nothing_lost(app)


# ---- 3. the database failing after the bytes were written ------------------------------


def test_database_refusing_the_row_keeps_no_bytes_and_reserves_no_quota(
    app: Flask, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    """An INSERT aborted after the bytes were written: a JSON 500, nothing kept."""
    auth.register()
    data = text_bytes(300 * KiB, seed=3)

    with file_rows_refused(app):
        response = upload(auth, "refused.txt", data)
        assert response.status_code == 500
        body = response.get_json()
        assert body["code"] == "internal_error"
        assert body["error"]
        # The bytes were stored before the INSERT failed; none of them stayed.
        assert stored_objects(app) == {} and pending_uploads(app) == []
        assert usage(auth.client) == (0, 0)
        assert auth.client.get("/api/files").get_json()["total"] == 0
        assert get_queue(redis).count == 0

    # Once the database accepts rows again, the same upload goes through.
    response = upload(auth, "refused.txt", data)
    assert response.status_code == 201
    worker()
    file_id = response.get_json()["file_id"]
    assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"
    assert usage(auth.client) == (len(data), 1)
    assert_nothing_lost(app)


# ---- 4. a full disk --------------------------------------------------------------------

DISK_BYTES = 256 * KiB


class FullDiskFile:
    """A file that fails with ENOSPC once `room` bytes were written to it."""

    def __init__(self, real: IO[bytes], room: int) -> None:
        self._real = real
        self._room = room

    def write(self, data: bytes) -> int:
        """Write, or fail as a full file system does."""
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._real.close()


def mount_tmpfs(folder: Path, size: int) -> bool:
    """Mount a tmpfs of `size` bytes on folder; False where this machine forbids it."""
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


class TestFullDisk:
    """UPLOAD_FOLDER on a file system with room for 256 KiB."""

    @pytest.fixture
    def app_overrides(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[dict[str, Any]]:
        """A real tiny tmpfs as UPLOAD_FOLDER where mounting is allowed."""
        uploads = tmp_path / "uploads"
        uploads.mkdir()
        mounted = mount_tmpfs(uploads, DISK_BYTES)
        if not mounted:
            # Double at the OS edge, only where this machine forbids mounting a small
            # file system: the temp file's writes fail as a full disk's would.
            real_init = LocalUpload.__init__

            def init(self: LocalUpload, backend: LocalStorage, key: str) -> None:
                real_init(self, backend, key)
                self._file = FullDiskFile(self._file, DISK_BYTES)  # type: ignore[assignment]

            monkeypatch.setattr(LocalUpload, "__init__", init)
            real_open = open

            def open_resumable(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
                handle = real_open(path, mode, *args, **kwargs)
                if mode != "a+b":  # only a resumable upload's appended file
                    return handle
                return FullDiskFile(handle, DISK_BYTES - os.path.getsize(path))

            monkeypatch.setattr(local_storage, "open", open_resumable, raising=False)
        try:
            # A full local disk: this test is about the local backend whatever the run's.
            yield {"STORAGE_BACKEND": "local", "UPLOAD_FOLDER": str(uploads)}
        finally:
            if mounted:
                done = subprocess.run(["umount", str(uploads)], timeout=30, check=False)
                if done.returncode != 0:
                    subprocess.run(["umount", "-l", str(uploads)], timeout=30, check=False)

    def test_a_full_disk_answers_507_and_keeps_nothing(
        self, app: Flask, auth: Auth, worker: Callable[[], None]
    ) -> None:
        """ENOSPC while the upload streams to disk: a JSON 507, no temp file, no usage."""
        auth.register()
        root = Path(app.config["UPLOAD_FOLDER"])

        response = upload(auth, "larger-than-the-disk.txt", text_bytes(MiB, seed=4))
        assert response.status_code == 507
        body = response.get_json()
        assert body["code"] == "insufficient_storage"
        assert "disk space" in body["error"]
        assert files_under(root) == []
        assert usage(auth.client) == (0, 0)
        assert auth.client.get("/api/files").get_json()["total"] == 0

        # The partial temp file's space was given back: a file that fits is stored.
        small = text_bytes(64 * KiB, seed=5)
        response = upload(auth, "fits.txt", small)
        assert response.status_code == 201, response.get_json()
        worker()
        file_id = response.get_json()["file_id"]
        assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"
        download = auth.client.get(f"/api/files/{file_id}/download")
        assert download.data == small
        download.close()
        assert usage(auth.client) == (len(small), 1)
        assert_nothing_lost(app)

    def test_a_patch_that_fills_the_disk_answers_507_and_the_upload_stays_where_it_was(
        self, app: Flask, auth: Auth
    ) -> None:
        """ENOSPC mid-PATCH: a JSON 507, the offset of the last whole PATCH, bytes intact."""
        auth.register()
        tus = {**TUS, **bearer(auth.token())}
        data = text_bytes(384 * KiB, seed=6)
        created = create(auth.client, tus, len(data))
        assert created.status_code == 201
        url = created.headers["Location"]

        def patch(start: int, end: int) -> Any:
            return tus_patch(auth.client, tus, url, start, data[start:end])

        assert patch(0, 128 * KiB).status_code == 204
        response = patch(128 * KiB, len(data))  # 384 KiB cannot fit in 256 KiB
        assert response.status_code == 507
        assert response.get_json()["code"] == "insufficient_storage"
        head = auth.client.head(url, headers=tus)
        assert head.headers["Upload-Offset"] == str(128 * KiB)

        # The client goes on from the server's offset: what the failed PATCH wrote is gone.
        assert patch(128 * KiB, 192 * KiB).status_code == 204
        with app.app_context():
            storage = get_storage()
        assert isinstance(storage, LocalStorage)
        stored = storage.parts_path(url.rsplit("/", 1)[-1])
        assert stored.read_bytes() == data[: 192 * KiB]
        assert auth.client.get("/api/org", headers=tus).get_json()["reserved_bytes"] == len(data)

        assert auth.client.delete(url, headers=tus).status_code == 204
        assert not stored.exists()
        assert auth.client.get("/api/org", headers=tus).get_json()["reserved_bytes"] == 0
        assert usage(auth.client) == (0, 0)


# ---- 5. two workers and eight web threads at once --------------------------------------


def test_a_forked_process_waits_its_turn_at_the_sqlite_writer_lock(tmp_path: Path) -> None:
    """RQ's forking worker writes from a child: it waits for its parent's lock, never shares it."""
    database = str(tmp_path / "coffer.db")
    order = tmp_path / "order"
    with writer_lock(database).held():
        child = os.fork()
        if child == 0:
            try:
                with writer_lock(database).held():
                    with order.open("a") as out:
                        out.write("child\n")
            finally:
                os._exit(0)
        time.sleep(0.3)
        with order.open("a") as out:
            out.write("parent\n")
    os.waitpid(child, 0)

    assert order.read_text() == "parent\nchild\n"


def test_writes_go_through_when_the_writer_lock_file_cannot_be_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = WriterLock(str(tmp_path / "missing" / "coffer.db.writer-lock"))

    with lock.held(), lock.held():
        written = True

    assert written
    assert "busy timeout alone" in caplog.text


@pytest.mark.slow
def test_two_workers_and_eight_web_threads_share_the_database_without_errors(
    app: Flask, auth: Auth, tmp_path: Path
) -> None:
    """Concurrent requests on waitress with two workers: no 5xx, no lock error, all ready."""
    tokens = tokens_of_two_organizations(auth)
    port = free_port()
    env = process_env(app, HOST="127.0.0.1", PORT=str(port), WEB_THREADS="8")
    sent: dict[str, tuple[str, bytes]] = {}
    lock = threading.Lock()

    def client(number: int) -> list[tuple[str, int, bytes]]:
        rng = random.Random(number)
        token = tokens[number % 2]
        mine: list[str] = []
        seen = []
        for step in range(30):
            roll = rng.random()
            if roll < 0.4 or not mine:
                data = text_bytes(rng.randint(1, 32) * KiB, seed=1000 * number + step)
                body, kind = multipart(f"c{number}-{step}.txt", data, "text/plain")
                status, answer = call(port, "POST", "/api/files/upload", token, body, kind)
                if status == 201:
                    file_id = json.loads(answer)["file_id"]
                    mine.append(file_id)
                    with lock:
                        sent[file_id] = (token, data)
                request = "upload"
            elif roll < 0.6:
                request = f"/api/files?page=1&limit={rng.randint(1, 50)}"
                status, answer = call(port, "GET", request, token)
            elif roll < 0.8:
                request = f"/api/files/{rng.choice(mine)}"
                status, answer = call(port, "GET", request, token)
            else:
                request = f"/api/files/{rng.choice(mine)}/download"
                status, answer = call(port, "GET", request, token)
            seen.append((request, status, answer))
        return seen

    with contextlib.ExitStack() as stack:
        web = stack.enter_context(managed(["serve"], env, tmp_path / "web.log"))
        workers = [
            stack.enter_context(managed(["worker"], env, tmp_path / f"worker-{n}.log"))
            for n in range(2)
        ]
        wait_for(lambda: served(port), WAIT_SECONDS, "the web server to answer")
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = [a for seen in pool.map(client, range(8)) for a in seen]

        failures = [(r, s, b[:200]) for r, s, b in answers if s >= 500]
        assert not failures, failures
        locked = [(r, s) for r, s, b in answers if b"database is locked" in b]
        assert not locked, locked
        uploads = [(s, b) for r, s, b in answers if r == "upload"]
        assert uploads and all(s == 201 for s, _ in uploads), uploads[:3]

        def settled() -> bool:
            for token in tokens:
                for status in ("pending", "processing"):
                    _, body = call(port, "GET", f"/api/files?status={status}&limit=1", token)
                    if json.loads(body)["total"]:
                        return False
            return True

        wait_for(settled, WAIT_SECONDS, "every upload to be validated")
        for file_id, (token, data) in sent.items():
            status, body = call(port, "GET", f"/api/files/{file_id}/download", token)
            assert status == 200 and body == data, file_id
        logs = web.output() + "".join(w.output() for w in workers)

    assert "database is locked" not in logs
    assert_nothing_lost(app)
    with app.app_context():
        statuses = set(_db.session.scalars(select(File.status)))
        _db.session.remove()
    assert statuses == {"ready"}


# ---- 6. many uploads racing for the last of a quota -------------------------------------


class TestQuotaRace:
    """Organizations get a 1 MiB quota."""

    @pytest.fixture
    def app_overrides(self) -> dict[str, Any]:
        """A quota small enough to fill in a few uploads."""
        return {"STORAGE_QUOTA_MB": 1}

    def test_concurrent_uploads_never_overcommit_a_nearly_full_quota(
        self, app: Flask, auth: Auth, worker: Callable[[], None]
    ) -> None:
        """24 uploads racing for the last of a quota: never over it, nobody wrongly refused."""
        auth.register()
        token = auth.token()
        prefill = text_bytes(700 * KiB, seed=6)
        assert upload(auth, "prefill.txt", prefill).status_code == 201
        rng = random.Random(6)
        sizes = [rng.randint(40, 160) * KiB for _ in range(24)]
        start = threading.Barrier(len(sizes))

        def attempt(number: int) -> tuple[int, dict[str, Any]]:
            client = app.test_client()
            data = text_bytes(sizes[number], seed=600 + number)
            start.wait(timeout=60)
            response = upload_as(client, token, f"race-{number}.txt", data)
            return response.status_code, response.get_json()

        with ThreadPoolExecutor(max_workers=len(sizes)) as pool:
            results = list(pool.map(attempt, range(len(sizes))))

        accepted = [n for n, (status, _) in enumerate(results) if status == 201]
        refused = [n for n, (status, _) in enumerate(results) if status != 201]
        assert all(results[n][0] == 507 for n in refused), results
        assert all(results[n][1]["code"] == "quota_exceeded" for n in refused), results
        # The race had both outcomes: the quota had room for some, not for all.
        assert accepted and refused
        used, count = usage(auth.client)
        assert used == len(prefill) + sum(sizes[n] for n in accepted) <= MiB
        assert count == 1 + len(accepted)
        # Nobody was turned away who would still fit in what is left.
        assert all(sizes[n] > MiB - used for n in refused)

        worker()
        listing = auth.client.get("/api/files?limit=100").get_json()
        assert listing["total"] == 1 + len(accepted)
        assert {f["status"] for f in listing["files"]} == {"ready"}
        assert_nothing_lost(app)
