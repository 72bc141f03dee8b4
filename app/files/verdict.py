"""The verdict on an upload: its stored bytes checked against its row (size, the SHA-256
taken as they arrived, the type detected from the content against the name's extension),
then `ready` or `failed` recorded, with the SHA-256 and the CRC-32 (which a zip's entry
needs before its bytes) of the bytes read. The validation job calls `judge` for a file and
`judge_version` for a new version of one."""

from __future__ import annotations

import hashlib
import zlib
from enum import StrEnum

from sqlalchemy.exc import OperationalError

from ..libc import READ_BUFFER
from ..models import FileStatus, FileVersion
from ..services import content
from ..storage import extension_of, get_storage
from . import lifecycle

try:
    import magic
except ImportError:  # no system libmagic: use the copy the pylibmagic wheel ships
    # pylibmagic must be imported first: it points python-magic at its library.
    import pylibmagic  # noqa: F401, I001

    import magic

READ_CHUNK = READ_BUFFER
# libmagic's default bytes_max: how far into a file it looks.
MAGIC_BYTES = 7 * 1024 * 1024
# The type of a file of no bytes (libmagic's name): only WebDAV keeps one (intake.accept).
EMPTY_TYPE = "application/x-empty"
# The status a file no longer there is reported with.
GONE = "deleted"


class Outcome(StrEnum):
    """What one run of validation did (the metrics' `verdict` label)."""

    READY = "ready"
    FAILED = "failed"
    # The file was gone or already had its verdict: this run recorded nothing.
    SKIPPED = "skipped"
    # The run could not finish and will be tried again.
    RETRY = "retry"


class Invalid(Exception):
    """The file is definitely not acceptable; the message says why."""


def judge(organization_id: int, file_id: str) -> tuple[str, Outcome]:
    """Validate one file and record its verdict: its final status (GONE when it no longer
    exists), and what this run did."""
    claim = lifecycle.claim_for_validation(organization_id, file_id)
    if claim is None:
        # Deleted meanwhile, or a verdict already stands (this is a second run).
        return lifecycle.status_of(organization_id, file_id) or GONE, Outcome.SKIPPED
    try:
        mime_type, sha256, crc32 = inspect(claim)
    except Invalid as exc:
        moved = lifecycle.move(organization_id, file_id, FileStatus.FAILED, error_message=str(exc))
        return FileStatus.FAILED, Outcome.FAILED if moved else Outcome.SKIPPED
    status = lifecycle.record_verdict(
        organization_id,
        file_id,
        mime_type=mime_type,
        sha256=sha256,
        crc32=crc32,
        error_message=None,
    )
    if status is None:
        return GONE, Outcome.SKIPPED
    return status, Outcome(status.value)


def judge_version(
    organization_id: int, version_id: str
) -> tuple[str, Outcome, lifecycle.VersionVerdict | None]:
    """Validate one version of a file by the same rules, record its verdict (promoting it
    when ready and newer than the file's), then keep the file's newest versions only: its
    final status (GONE when no longer there), what this run did, and the verdict."""
    claim = lifecycle.claim_version_for_validation(organization_id, version_id)
    if claim is None:
        status = lifecycle.version_status_of(organization_id, version_id)
        return status or GONE, Outcome.SKIPPED, None
    try:
        mime_type, sha256, crc32 = inspect(claim)
    except Invalid as exc:
        moved = lifecycle.move(
            organization_id,
            version_id,
            FileStatus.FAILED,
            model=FileVersion,
            error_message=str(exc),
        )
        file_id = lifecycle.file_of_version(organization_id, version_id)
        if file_id is not None:
            lifecycle.prune_versions(organization_id, file_id)
        return FileStatus.FAILED, Outcome.FAILED if moved else Outcome.SKIPPED, None
    verdict = lifecycle.record_version_verdict(
        organization_id,
        version_id,
        mime_type=mime_type,
        sha256=sha256,
        crc32=crc32,
        error_message=None,
    )
    if verdict is None:
        return GONE, Outcome.SKIPPED, None
    lifecycle.prune_versions(organization_id, verdict.file_id)
    return verdict.status, Outcome(verdict.status.value), verdict


def give_up_version(organization_id: int, version_id: str, exc: BaseException) -> bool:
    """Fail a version whose validation could not complete, keeping its bytes (as give_up)."""
    return lifecycle.move(
        organization_id,
        version_id,
        FileStatus.FAILED,
        model=FileVersion,
        keep_bytes=True,
        error_message=give_up_message(exc),
    )


def give_up(organization_id: int, file_id: str, exc: BaseException) -> bool:
    """Fail a file whose validation could not complete, keeping its bytes (the content was
    never judged, so `jobs requeue-failed` may still save it); False when it did not move."""
    return lifecycle.move(
        organization_id,
        file_id,
        FileStatus.FAILED,
        keep_bytes=True,
        error_message=give_up_message(exc),
    )


def give_up_message(exc: BaseException) -> str:
    """Why validation could not complete, for the file's owner: no server paths, no SQL."""
    if isinstance(exc, OperationalError):
        reason = "the database could not be reached"
    elif isinstance(exc, OSError):
        reason = f"the stored file could not be read ({exc.strerror or type(exc).__name__})"
    else:
        reason = "an unexpected error occurred"
    return f"validation could not complete: {reason}"


def inspect(row: lifecycle.Claim) -> tuple[str, str, int]:
    """Check the stored bytes against the row (their size, the SHA-256 recorded as they
    arrived when there is one, their type); returns (mime_type, sha256, crc32) or raises
    Invalid."""
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
        # The CRC-32 in the same pass: a zip of the file then need not read it twice.
        crc32 = zlib.crc32(head)
        size = len(head)
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            crc32 = zlib.crc32(chunk, crc32)
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
    if size == 0:
        # No content to disagree with its name: an empty file is what it says.
        return EMPTY_TYPE, sha256, crc32
    # libmagic reads no further than its bytes_max (7 MiB) into a file, so its verdict
    # on the head read here is the one it gives on the whole file.
    detected = magic.from_buffer(head, mime=True)
    mime_type, problem = content.resolve(extension_of(row.filename), detected)
    if problem:
        raise Invalid(problem)
    return mime_type, sha256, crc32
