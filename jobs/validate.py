"""The validation jobs: run the verdict on an upload, or on a new version of a file
(app/files/verdict.py), with RQ's retries, and announce it."""

from __future__ import annotations

import logging
import time

from rq import get_current_job

from app import metrics
from app.extensions import db
from app.files import previews, verdict
from app.files.verdict import Outcome
from app.models import FileStatus
from app.services import webhooks

log = logging.getLogger(__name__)


def validate_file(file_id: str, organization_id: int) -> str:
    """Validate one upload and record the verdict; returns the file's final status.

    Runs inside the app context pushed by the worker entry point. Safe to run twice.
    """
    job = get_current_job()
    log.info("validation of file %s started", file_id, extra={"file_id": file_id})
    started = time.perf_counter()
    try:
        status, outcome = verdict.judge(organization_id, file_id)
    except Exception as exc:
        retrying = job is not None and bool(job.retries_left)
        metrics.count_validation(
            Outcome.RETRY if retrying else Outcome.FAILED, time.perf_counter() - started
        )
        # Whatever went wrong may pass (a busy database, a disk hiccup): RQ retries
        # the job with backoff, and only the last attempt gives up on the file.
        db.session.rollback()
        if not retrying:
            # Out of retries: the job goes to RQ's failed registry, the file to failed.
            gave_up = verdict.give_up(organization_id, file_id, exc)
            log.error("validation of file %s gave up: %s", file_id, exc, extra={"file_id": file_id})
            if gave_up:
                announce(organization_id, file_id, FileStatus.FAILED)
        else:
            log.warning(
                "validation of file %s will be retried: %s",
                file_id,
                exc,
                extra={"file_id": file_id},
            )
        raise
    else:
        if outcome is not Outcome.SKIPPED:
            announce(organization_id, file_id, status)
            if status == FileStatus.READY:
                # After the verdict's commit: previews never delay `ready`.
                previews.queue(organization_id, file_id)
    finally:
        db.session.remove()
    metrics.count_validation(outcome, time.perf_counter() - started)
    log.info(
        "validation of file %s ended: %s",
        file_id,
        status,
        extra={"file_id": file_id, "status": status},
    )
    return status


def validate_version(version_id: str, organization_id: int) -> str:
    """Validate one version of a file and record the verdict (a ready version newer than
    the file's becomes what the file answers with); returns the version's final status.

    Runs inside the app context pushed by the worker entry point. Safe to run twice.
    """
    job = get_current_job()
    extra = {"file_id": version_id}
    log.info("validation of version %s started", version_id, extra=extra)
    started = time.perf_counter()
    try:
        status, outcome, verdict_ = verdict.judge_version(organization_id, version_id)
    except Exception as exc:
        retrying = job is not None and bool(job.retries_left)
        metrics.count_validation(
            Outcome.RETRY if retrying else Outcome.FAILED, time.perf_counter() - started
        )
        # As for a file: RQ retries, and only the last attempt gives up on the version.
        db.session.rollback()
        if not retrying:
            verdict.give_up_version(organization_id, version_id, exc)
            log.error("validation of version %s gave up: %s", version_id, exc, extra=extra)
        else:
            log.warning(
                "validation of version %s will be retried: %s", version_id, exc, extra=extra
            )
        raise
    else:
        if verdict_ is not None and verdict_.promoted:
            announce_version(organization_id, verdict_.file_id)
            # The file answers with new content: its previews are made anew.
            previews.queue(organization_id, verdict_.file_id)
    finally:
        db.session.remove()
    metrics.count_validation(outcome, time.perf_counter() - started)
    log.info(
        "validation of version %s ended: %s", version_id, status, extra={**extra, "status": status}
    )
    return status


def announce_version(organization_id: int, file_id: str) -> None:
    """Send `file.version_added` for a file that now answers with a new version; as
    `announce`, nothing here fails the job."""
    try:
        webhooks.file_event(organization_id, file_id, webhooks.FILE_VERSION_ADDED)
    except Exception:  # logged; the promotion is already recorded
        db.session.rollback()
        log.exception("could not send the file.version_added webhooks of file %s", file_id)


def announce(organization_id: int, file_id: str, status: str) -> None:
    """Send the webhooks of a verdict that has committed: `file.ready` or `file.failed`.

    A verdict stands whatever becomes of its webhooks, so nothing here fails the job.
    """
    event = webhooks.FILE_READY if status == FileStatus.READY else webhooks.FILE_FAILED
    try:
        webhooks.file_event(organization_id, file_id, event)
    except Exception:  # logged; the file's status is already recorded
        db.session.rollback()
        log.exception("could not send the %s webhooks of file %s", event, file_id)
