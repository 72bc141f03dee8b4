"""The validation job: decides whether an upload is `ready` or `failed`."""

from __future__ import annotations

import hashlib
import logging
import time

from rq import get_current_job
from sqlalchemy.exc import OperationalError

from app import metrics
from app.extensions import db
from app.files import lifecycle
from app.models import FileStatus
from app.services import content, webhooks
from app.storage import extension_of, get_storage

try:
    import magic
except ImportError:  # no system libmagic: use the copy the pylibmagic wheel ships
    # pylibmagic must be imported first: it points python-magic at its library.
    import pylibmagic  # noqa: F401, I001

    import magic

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
# libmagic's default bytes_max: how far into a file it looks.
MAGIC_BYTES = 7 * 1024 * 1024


class Invalid(Exception):
    """The file is definitely not acceptable; the message says why."""


def validate_file(file_id: str, organization_id: int) -> str:
    """Validate one upload and record the verdict; returns the file's final status.

    Runs inside the app context pushed by the worker entry point. Safe to run twice.
    """
    job = get_current_job()
    log.info("validation of file %s started", file_id, extra={"file_id": file_id})
    started = time.perf_counter()
    try:
        status, verdict = _validate(file_id, organization_id)
    except Exception as exc:
        retrying = job is not None and bool(job.retries_left)
        metrics.count_validation("retry" if retrying else "failed", time.perf_counter() - started)
        # Whatever went wrong may pass (a busy database, a disk hiccup): RQ retries
        # the job with backoff, and only the last attempt gives up on the file.
        db.session.rollback()
        if not retrying:
            # Out of retries: the job goes to RQ's failed registry, the file to failed.
            gave_up = lifecycle.move(
                organization_id,
                file_id,
                FileStatus.FAILED,
                keep_bytes=True,
                error_message=give_up_message(exc),
            )
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
        if verdict != "skipped":
            announce(organization_id, file_id, status)
    finally:
        db.session.remove()
    metrics.count_validation(verdict, time.perf_counter() - started)
    log.info(
        "validation of file %s ended: %s",
        file_id,
        status,
        extra={"file_id": file_id, "status": status},
    )
    return status


def give_up_message(exc: BaseException) -> str:
    """Why validation could not complete, for the file's owner: no server paths, no SQL."""
    if isinstance(exc, OperationalError):
        reason = "the database could not be reached"
    elif isinstance(exc, OSError):
        reason = f"the stored file could not be read ({exc.strerror or type(exc).__name__})"
    else:
        reason = "an unexpected error occurred"
    return f"validation could not complete: {reason}"


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


def _validate(file_id: str, organization_id: int) -> tuple[str, str]:
    """The file's final status, and this run's verdict: ready or failed when this run
    recorded it, skipped when it did not."""
    claim = lifecycle.claim_for_validation(organization_id, file_id)
    if claim is None:
        # Deleted meanwhile, or a verdict already stands (this is a second run).
        return lifecycle.status_of(organization_id, file_id) or "deleted", "skipped"
    try:
        mime_type, sha256 = inspect(claim)
    except Invalid as exc:
        moved = lifecycle.move(organization_id, file_id, FileStatus.FAILED, error_message=str(exc))
        return FileStatus.FAILED, "failed" if moved else "skipped"
    status = lifecycle.record_verdict(
        organization_id, file_id, mime_type=mime_type, sha256=sha256, error_message=None
    )
    return (status or "deleted"), (status or "skipped")


def inspect(row: lifecycle.Claim) -> tuple[str, str]:
    """Check the stored bytes against the row (their size, the SHA-256 recorded as they
    arrived when there is one, their type); returns (mime_type, sha256) or raises."""
    storage = get_storage()
    try:
        handle = storage.open(row.file_path)
    except FileNotFoundError:
        raise Invalid("the stored file is missing") from None
    except PermissionError:
        raise Invalid("the stored file is not readable") from None
    with handle:
        head = handle.read(MAGIC_BYTES)
        digest = hashlib.sha256(head)
        size = len(head)
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if size != row.size:
        raise Invalid(f"the stored file has {size} bytes but {row.size} were uploaded")
    sha256 = digest.hexdigest()
    if row.sha256 is not None and sha256 != row.sha256:
        # The hash of a resumable upload was taken as its bytes arrived: the store changed them.
        raise Invalid(
            f"the stored bytes differ from those uploaded (sha256 {sha256}, "
            f"{row.sha256} when the last byte arrived)"
        )
    # libmagic reads no further than its bytes_max (7 MiB) into a file, so its verdict
    # on the head read here is the one it gives on the whole file.
    detected = magic.from_buffer(head, mime=True)
    mime_type, problem = content.resolve(extension_of(row.filename), detected)
    if problem:
        raise Invalid(problem)
    return mime_type, sha256
