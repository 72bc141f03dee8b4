"""The sweep for files whose job will never move them: a job that outlived its timeout,
a job held by a worker on another host that stopped beating, and the lock that lets one
sweep run per interval across every worker and instance."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq.job import Job, JobStatus
from rq.utils import now, utcformat
from rq.worker import Worker

from app import create_app
from app.broker import get_queue, worker_queues
from app.extensions import db as _db
from app.files import lifecycle
from app.files.sweep import SWEEP_LOCK, sweep_if_due
from app.services.queue import job_id
from tests.support.client import Auth
from tests.support.config import app_config
from tests.support.pipeline import upload
from tests.support.waiting import wait_for

# Long enough that two sweeps a few milliseconds apart always fall in one interval.
SWEEP_SECONDS = 3
ELSEWHERE = "worker-host-2.example"
# One "requeued N stuck file(s)" line per sweep that queued anything (app/files/sweep.py).
REQUEUED = "requeued {} stuck file(s)"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """A short sweep interval, so the lock lapses within the test."""
    return {"SWEEP_SECONDS": SWEEP_SECONDS}


@pytest.fixture
def registered_workers(app: Flask) -> Iterator[Callable[[str], Worker]]:
    """Register RQ workers in the test's Redis, as a worker does at start, from a host."""
    # Clients of their own: RQ's Worker raises its client's socket timeout.
    connections: list[Redis] = []

    def register(hostname: str) -> Worker:
        connection = Redis.from_url(app.config["REDIS_URL"])
        connections.append(connection)
        worker = Worker(
            worker_queues(connection), connection=connection, name=f"w-{uuid.uuid4().hex[:8]}"
        )
        # This process stands in for the worker: its pid exists, so on this host the
        # worker counts as alive; on another host the pid means nothing here.
        worker.hostname = hostname
        worker.register_birth()
        return worker

    yield register
    for connection in connections:
        connection.close()


def taken(
    app: Flask,
    auth: Auth,
    worker: Worker,
    filename: str,
    started_ago: timedelta,
    beat_ago: timedelta,
) -> str:
    """Upload a file; take its job off the queue and mark it started by `worker` (RQ's own
    bookkeeping for a job's start), its start and last heartbeat that long ago; claim the
    file as the job does. The file's id."""
    response = upload(auth, filename, f"{filename}\n".encode())
    assert response.status_code == 201, response.get_json()
    file_id: str = response.get_json()["file_id"]
    connection = worker.connection
    job = Job.fetch(job_id(file_id), connection=connection)
    get_queue(connection).remove(job)
    with connection.pipeline() as pipeline:
        job.prepare_for_execution(worker.name, pipeline)
        pipeline.execute()
    connection.hset(
        job.key,
        mapping={
            "started_at": utcformat(now() - started_ago),
            "last_heartbeat": utcformat(now() - beat_ago),
        },
    )
    organization_id = auth_org(auth)
    with app.app_context():
        assert lifecycle.claim_for_validation(organization_id, file_id) is not None
    return file_id


def auth_org(auth: Auth) -> int:
    """The organization id of the logged-in user."""
    org_id: int = auth.client.get("/api/auth/me").get_json()["organization_id"]
    return org_id


def status_of(auth: Auth, file_id: str) -> str:
    """A file's status as its owner sees it."""
    status: str = auth.client.get(f"/api/files/{file_id}").get_json()["status"]
    return status


def requeued_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The sweep's "requeued" log lines so far."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("requeued ")]


def test_a_job_running_past_its_timeout_is_queued_again_and_its_file_ends_ready(
    app: Flask,
    auth: Auth,
    redis: Redis,
    registered_workers: Callable[[str], Worker],
    worker: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker of this host, still alive, whose job began longer ago than JOB_TIMEOUT
    plus a heartbeat: RQ would have killed it, so its file must not wait on it."""
    auth.register()
    hung = registered_workers(socket.gethostname())
    limit = timedelta(seconds=app.config["JOB_TIMEOUT"] + app.config["JOB_HEARTBEAT_SECONDS"])
    stuck = taken(app, auth, hung, "stuck.txt", limit + timedelta(minutes=1), timedelta(0))
    running = taken(app, auth, hung, "running.txt", timedelta(seconds=5), timedelta(0))
    assert status_of(auth, stuck) == status_of(auth, running) == "processing"

    with caplog.at_level(logging.INFO, logger="app.files.sweep"), app.app_context():
        assert sweep_if_due(redis, "sweeper", force=True) == [stuck]
    assert requeued_lines(caplog) == [REQUEUED.format(1)]
    assert get_queue(redis).job_ids == [job_id(stuck)]

    worker()
    assert status_of(auth, stuck) == "ready"
    # The job still within its time is left to its worker.
    assert status_of(auth, running) == "processing"
    assert Job.fetch(job_id(running), connection=redis).get_status() == JobStatus.STARTED
    with app.app_context():
        assert sweep_if_due(redis, "sweeper", force=True) == []


def test_a_job_on_another_host_counts_as_dead_once_its_heartbeat_is_stale(
    app: Flask,
    auth: Auth,
    redis: Redis,
    registered_workers: Callable[[str], Worker],
    worker: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """This host cannot see another host's pids: a job there is alive while it beats."""
    auth.register()
    remote = registered_workers(ELSEWHERE)
    stale = timedelta(seconds=app.config["JOB_STALE_SECONDS"])
    # Both began well within JOB_TIMEOUT: only the heartbeat tells them apart.
    started = stale + timedelta(seconds=30)
    assert started < timedelta(seconds=app.config["JOB_TIMEOUT"])
    dead = taken(app, auth, remote, "dead.txt", started, stale + timedelta(seconds=10))
    beating = taken(app, auth, remote, "beating.txt", started, timedelta(seconds=1))

    with caplog.at_level(logging.INFO, logger="app.files.sweep"), app.app_context():
        assert sweep_if_due(redis, "sweeper", force=True) == [dead]
    assert requeued_lines(caplog) == [REQUEUED.format(1)]

    worker()
    assert status_of(auth, dead) == "ready"
    assert status_of(auth, beating) == "processing"
    assert Job.fetch(job_id(beating), connection=redis).worker_name == remote.name


@pytest.fixture
def second_instance(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """Another instance of Coffer on the same database and Redis, as on another host."""
    other = create_app(
        app_config(
            app.config["SQLALCHEMY_DATABASE_URI"],
            app.config["REDIS_URL"],
            tmp_path / "second",
            SWEEP_SECONDS=SWEEP_SECONDS,
        )
    )
    yield other
    with other.app_context():
        _db.session.remove()
        _db.engine.dispose()


def lose_job(redis: Redis, file_id: str) -> None:
    """The file's job vanishes from Redis (flushed, evicted, an old snapshot restored)."""
    Job.fetch(job_id(file_id), connection=redis).delete()
    assert get_queue(redis).count == 0


def test_one_sweep_per_interval_across_instances_then_the_next_may_run(
    app: Flask,
    second_instance: Flask,
    auth: Auth,
    redis: Redis,
    worker: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth.register()
    response = upload(auth, "lost.txt", b"lost twice\n")
    lost = response.get_json()["file_id"]
    lose_job(redis, lost)

    def sweep(instance: Flask, owner: str) -> list[str] | None:
        with instance.app_context():
            return sweep_if_due(redis, owner)

    with caplog.at_level(logging.INFO, logger="app.files.sweep"):
        assert sweep(app, "host-1") == [lost]
        assert redis.get(SWEEP_LOCK) == b"host-1"
        assert 0 < redis.ttl(SWEEP_LOCK) <= SWEEP_SECONDS

        # Lost again within the interval: the other instance's sweep does not run.
        lose_job(redis, lost)
        assert sweep(second_instance, "host-2") is None
        assert sweep(app, "host-1") is None
        assert get_queue(redis).count == 0
        assert requeued_lines(caplog) == [REQUEUED.format(1)]

        # Once the lock lapses, the next sweep (whichever instance) queues it again.
        assert wait_for(
            lambda: sweep(second_instance, "host-2"),
            SWEEP_SECONDS + 10,
            "the sweep lock to lapse",
            interval=0.2,
        ) == [lost]
        assert redis.get(SWEEP_LOCK) == b"host-2"
    assert requeued_lines(caplog) == [REQUEUED.format(1)] * 2
    worker()
    assert status_of(auth, lost) == "ready"
