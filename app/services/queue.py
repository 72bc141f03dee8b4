"""Putting validation jobs on the queue, and what the queue holds.

RQ names the job function by its dotted path, so the application never imports `jobs`.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.worker import Worker
from sqlalchemy import func, select

from ..broker import get_preview_queue, get_queue, get_redis
from ..extensions import db
from ..models import File, FileStatus

log = logging.getLogger(__name__)

VALIDATE = "jobs.validate.validate_file"
VALIDATE_VERSION = "jobs.validate.validate_version"
MAKE_PREVIEWS = "jobs.previews.make_previews"
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def job_id(file_id: str, *, version: bool = False) -> str:
    """The one job id a file's (or a version's) validation runs under, so enqueueing twice
    is harmless."""
    return f"validate-version-{file_id}" if version else f"validate-{file_id}"


def retry_policy() -> Retry:
    """RQ's retry with the configured backoff (seconds between attempts)."""
    intervals = current_app.config["JOB_RETRY_INTERVALS"]
    return Retry(max=len(intervals), interval=intervals)


def enqueue_validation(
    file_id: str,
    organization_id: int,
    connection: Redis | None = None,
    *,
    version: bool = False,
) -> bool:
    """Queue a file's validation (or, with `version`, a version's by its id); False (and it
    stays pending, for the sweep) if Redis is down."""
    try:
        get_queue(connection).enqueue(
            VALIDATE_VERSION if version else VALIDATE,
            file_id,
            organization_id,
            job_id=job_id(file_id, version=version),
            retry=retry_policy(),
            job_timeout=current_app.config["JOB_TIMEOUT"],
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning(
            "could not queue validation of file %s (will be swept later): %s",
            file_id,
            exc,
            extra={"file_id": file_id},
        )
        return False
    return True


def enqueue_previews(file_id: str, organization_id: int, connection: Redis | None = None) -> bool:
    """Queue the making of a file's previews (of the content it answers with when the job
    runs); False if Redis is down (`manage.py previews backfill` makes them later)."""
    try:
        get_preview_queue(connection).enqueue(
            MAKE_PREVIEWS,
            file_id,
            organization_id,
            job_timeout=current_app.config["JOB_TIMEOUT"],
            result_ttl=600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning(
            "could not queue the previews of file %s: %s", file_id, exc, extra={"file_id": file_id}
        )
        return False
    return True


def enqueue_again(
    file_id: str,
    organization_id: int,
    connection: Redis | None = None,
    *,
    version: bool = False,
) -> bool:
    """Queue a file's (or version's) validation anew: its earlier job (a finished one still
    holds the id the new one takes) is dropped first. False when Redis is down, as
    enqueue_validation."""
    connection = connection or get_redis()
    try:
        Job.fetch(job_id(file_id, version=version), connection=connection).delete()
    except Exception:  # noqa: BLE001 - nothing to delete
        pass
    return enqueue_validation(file_id, organization_id, connection, version=version)


def has_live_job(file_id: str, connection: Redis, *, version: bool = False) -> bool:
    """Whether a file's (or version's) job is queued, scheduled or running on a live
    worker."""
    try:
        job = Job.fetch(job_id(file_id, version=version), connection=connection)
    except Exception:  # noqa: BLE001 - NoSuchJobError or an unreadable job: not live
        return False
    status = job.get_status(refresh=False)
    if status not in LIVE_STATUSES:
        return False
    if status == JobStatus.STARTED:
        started = job.started_at
        if started is not None:
            if started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            # Past its timeout plus a heartbeat, a job is not coming back (RQ would
            # have killed it): its file is stuck in `processing`.
            limit = current_app.config["JOB_TIMEOUT"] + current_app.config["JOB_HEARTBEAT_SECONDS"]
            if datetime.now(UTC) - started > timedelta(seconds=limit):
                return False
        holder = worker_state(job.worker_name, connection)
        if holder != "unknown":
            return holder == "alive"
        # A worker on another host: only the job's heartbeat can tell. (RQ's default,
        # in-process worker stamps it when the job starts; the forking one refreshes it.)
        beat = job.last_heartbeat or job.started_at
        if beat is None:
            return False
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        stale_after = timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])
        return datetime.now(UTC) - beat < stale_after
    return True


def worker_state(worker_name: str | None, connection: Redis) -> str:
    """Whether the worker that started a job is "alive", "gone" or "unknown".

    Gone when its registration in Redis has expired, or when it registered from this
    host under a pid that no longer exists (killed, crashed, OOM): its job can be queued
    again at once. Alive when that pid exists on this host. Unknown for another host.
    """
    if not worker_name:
        return "unknown"
    # The registration hash RQ keeps per worker (read directly: building a Worker
    # object would raise the shared client's socket timeout).
    hostname, pid = (
        value.decode() if isinstance(value, bytes) else value
        for value in connection.hmget(
            Worker.redis_worker_namespace_prefix + worker_name, ["hostname", "pid"]
        )
    )
    if hostname is None and pid is None:
        return "gone"
    if hostname != socket.gethostname() or pid is None or not pid.isdigit() or int(pid) <= 0:
        return "unknown"
    return "alive" if pid_exists(int(pid)) else "gone"


def pid_exists(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class Status:
    """Queue counts and files per status."""

    queued: int
    started: int
    failed: int
    files: dict[str, int]


def status(connection: Redis | None = None) -> Status:
    """How many jobs wait, run and failed, and how many files are in each status."""
    queue = get_queue(connection)
    counts = dict(db.session.execute(select(File.status, func.count()).group_by(File.status)).all())
    return Status(
        queued=queue.count,
        started=StartedJobRegistry(queue=queue).count,
        failed=FailedJobRegistry(queue=queue).count,
        files={s.value: int(counts.get(s.value, 0)) for s in FileStatus},
    )
