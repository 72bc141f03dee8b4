"""The sweep: files and versions that lost their validation job are queued again, stranded
resumable uploads completed, expired ones removed, activity past its retention deleted, the
trash purged of what is past its retention; and an operator's requeue of failed jobs."""

from __future__ import annotations

import logging

from flask import current_app
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from ..broker import get_queue, get_redis
from ..extensions import db
from ..models import File, FileStatus, FileVersion
from ..services import activity
from ..services.queue import VALIDATE_VERSION, enqueue_again, has_live_job
from . import lifecycle, resumable, trash

log = logging.getLogger(__name__)

# Held by whichever worker sweeps this interval, so one sweep runs at a time across hosts.
SWEEP_LOCK = "coffer:sweep-lock"


def sweep_if_due(connection: Redis, owner: str, force: bool = False) -> list[str] | None:
    """Make the files of stranded resumable uploads, run `requeue_stuck`, remove expired
    resumable uploads and purge the trash of what is due, unless another worker swept
    within SWEEP_SECONDS; None if skipped.

    The lock is never released early: it lapses after the interval, so however many
    workers try, the files are swept once per interval.
    """
    interval = int(current_app.config["SWEEP_SECONDS"])
    if not force and not connection.set(SWEEP_LOCK, owner, nx=True, ex=interval):
        return None
    # Stranded uploads first: their new files are then queued by the same sweep.
    resumable.complete_stranded()
    requeued = requeue_stuck(connection)
    resumable.expire_resumable()
    activity.purge_expired()
    # Last: a large purge takes a while, and keeps the lock while it runs.
    trash.purge_due(between=lambda: _keep_lock(connection, owner, interval))
    return requeued


def _keep_lock(connection: Redis, owner: str, interval: int) -> None:
    """Extend the sweep lock while this sweep still holds it, so no other sweep starts
    while a long purge runs."""
    if connection.get(SWEEP_LOCK) == owner.encode():
        connection.expire(SWEEP_LOCK, interval)


def requeue_stuck(connection: Redis | None = None) -> list[str]:
    """Queue again every pending or processing file, and version of one, that has no live
    job; the ids queued."""
    connection = connection or get_redis()
    unfinished = [FileStatus.PENDING, FileStatus.PROCESSING]
    # Cross-tenant on purpose: an operator's sweep over every organization.
    rows = [
        (file_id, organization_id, False)
        for file_id, organization_id in db.session.execute(
            select(File.id, File.organization_id).where(File.status.in_(unfinished))
        ).all()
    ]
    rows += [
        (version_id, organization_id, True)
        for version_id, organization_id in db.session.execute(
            select(FileVersion.id, FileVersion.organization_id).where(
                FileVersion.status.in_(unfinished)
            )
        ).all()
    ]
    db.session.rollback()
    requeued = []
    for row_id, organization_id, version in rows:
        if has_live_job(row_id, connection, version=version):
            continue
        if enqueue_again(row_id, organization_id, connection, version=version):
            requeued.append(row_id)
    if requeued:
        log.info("requeued %d stuck file(s)", len(requeued))
    return requeued


def requeue_failed(connection: Redis | None = None) -> int:
    """Give every job in RQ's failed registry another run, its file (or version) back to
    pending."""
    registry = FailedJobRegistry(queue=get_queue(connection))
    count = 0
    for failed_id in registry.get_job_ids():
        try:
            job = Job.fetch(failed_id, connection=registry.connection)
            file_id, organization_id = job.args[0], int(job.args[1])
            version = job.func_name == VALIDATE_VERSION
        except Exception:  # noqa: BLE001 - not one of Coffer's jobs, or expired
            continue
        lifecycle.move(
            organization_id,
            file_id,
            FileStatus.PENDING,
            model=FileVersion if version else File,
            error_message=None,
        )
        registry.requeue(failed_id)
        count += 1
    return count
