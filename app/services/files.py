"""Files: upload with quota reservation, listing, lookup, deletion and status moves."""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast, overload

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    Table,
    bindparam,
    insert,
    or_,
    select,
    tuple_,
    update,
)

from .. import metrics, units
from ..config import MiB
from ..database import write_transaction
from ..extensions import db
from ..files import policy
from ..models import File, FileStatus, Organization, User, utcnow
from ..storage import Upload, get_storage
from ..tenancy import get_scoped_or_404, in_organization, scoped
from . import webhooks
from .content import served_type
from .errors import Conflict, Gone, InvalidInput, NotAllowed, NotFound, QuotaExceeded, TooLarge

log = logging.getLogger(__name__)

# The moves validation may make, and from where; nothing else writes `status`.
ALLOWED_MOVES: dict[FileStatus, tuple[FileStatus, ...]] = {
    # Only an operator's `jobs requeue-failed` sends a failed file back.
    FileStatus.PENDING: (FileStatus.FAILED,),
    FileStatus.PROCESSING: (FileStatus.PENDING, FileStatus.PROCESSING),
    FileStatus.READY: (FileStatus.PROCESSING,),
    FileStatus.FAILED: (FileStatus.PENDING, FileStatus.PROCESSING),
}
FINAL_STATUSES = (FileStatus.READY, FileStatus.FAILED)
# Each status's row count on the organization (kept by the database).
STATUS_COUNTERS = {
    FileStatus.PENDING: Organization.files_pending,
    FileStatus.PROCESSING: Organization.files_processing,
    FileStatus.READY: Organization.files_ready,
    FileStatus.FAILED: Organization.files_failed,
}
# Why validation fails a file whose organization's quota was lowered below its usage.
OVER_QUOTA_MESSAGE = "the organization is over its storage quota"


# ---- quota ---------------------------------------------------------------------------


@overload
def fits_quota(used_bytes: int, reserved_bytes: int, storage_quota_mb: int) -> bool: ...
@overload
def fits_quota(
    used_bytes: SQLColumnExpression[int],
    reserved_bytes: SQLColumnExpression[int],
    storage_quota_mb: SQLColumnExpression[int],
) -> ColumnElement[bool]: ...
def fits_quota(used_bytes: Any, reserved_bytes: Any, storage_quota_mb: Any) -> Any:
    """The quota rule: the stored bytes and those held by unfinished resumable uploads
    together fit while they are at most the quota (set in MiB).

    On numbers it answers; on columns it is the same rule as a SQL condition.
    """
    return used_bytes + reserved_bytes <= storage_quota_mb * MiB


# Built once: the upload path runs it while holding the database's write lock.
_RESERVE = (
    update(Organization)
    .where(
        Organization.id == bindparam("reserve_org"),
        fits_quota(
            Organization.used_bytes + bindparam("reserve_size"),
            Organization.reserved_bytes,
            Organization.storage_quota_mb,
        ),
    )
    .values(
        used_bytes=Organization.used_bytes + bindparam("reserve_size"),
        file_count=Organization.file_count + 1,
    )
    .execution_options(synchronize_session=False)
)


def reserve_quota(organization_id: int, size: int) -> None:
    """Add a file's bytes to the organization's usage, or QuotaExceeded when they do not fit.

    One conditional UPDATE, so concurrent uploads can never together pass the quota.
    """
    result = db.session.execute(_RESERVE, {"reserve_org": organization_id, "reserve_size": size})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise quota_exceeded(organization_id, size)


def quota_exceeded(organization_id: int, size: int) -> QuotaExceeded:
    """The refusal of `size` more bytes: the organization's usage in binary units, and what to
    do about it."""
    org = db.session.get(Organization, organization_id, populate_existing=True)
    quota = org.storage_quota_mb * MiB if org else 0
    used = org.used_bytes if org else 0
    reserved = org.reserved_bytes if org else 0
    held = f"{units.size(used)} of {units.size(quota)} used" + (
        f", {units.size(reserved)} held by unfinished uploads" if reserved else ""
    )
    return QuotaExceeded(
        "quota_exceeded",
        f"this file ({units.size(size)}) does not fit in the organization's storage quota "
        f"({held}); delete files or ask an admin to raise the quota",
    )


def release_quota(organization_id: int, size: int, files: int) -> None:
    """Take bytes (and files) off the organization's usage."""
    db.session.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(
            used_bytes=Organization.used_bytes - size,
            file_count=Organization.file_count - files,
        )
    )


def within_quota(organization_id: int) -> bool:
    """Whether the organization's stored and held bytes are within its quota."""
    usage = db.session.execute(
        select(
            Organization.used_bytes, Organization.reserved_bytes, Organization.storage_quota_mb
        ).where(Organization.id == organization_id)
    ).first()
    return usage is not None and fits_quota(
        usage.used_bytes, usage.reserved_bytes, usage.storage_quota_mb
    )


# ---- upload --------------------------------------------------------------------------


def max_file_size() -> int:
    """The largest file in bytes (MAX_FILE_SIZE)."""
    return int(current_app.config["MAX_FILE_SIZE"])


def check_size(size: int, *, field: str) -> None:
    """The size rule for a file however it arrives: not empty, not over MAX_FILE_SIZE."""
    if size == 0:
        raise InvalidInput("empty_file", "the file is empty", field=field)
    if size > max_file_size():
        raise TooLarge(
            "file_too_large",
            f"the file is larger than the limit of {units.size(max_file_size())}",
        )


_INSERT_FILE = insert(cast(Table, File.__table__))


def create_upload(user: User, file_id: str, display: str, upload: Upload) -> File:
    """Record a fully received upload, reserving quota; all or nothing.

    The bytes are made durable first, outside the write lock; if the reservation or the
    row does not commit, they are removed again.
    """
    if not display:
        raise InvalidInput("invalid_filename", "the file name is empty", field="file")
    check_size(upload.size, field="file")
    try:
        upload.finish()
        with write_transaction() as session:
            reserve_quota(user.organization_id, upload.size)
            values = {
                "id": file_id,
                "filename": display,
                "file_path": upload.key,
                "size": upload.size,
                "status": FileStatus.PENDING,
                "bytes_stored": True,
                "organization_id": user.organization_id,
                "uploaded_by": user.id,
                "uploaded_at": utcnow(),
            }
            # A plain INSERT rather than the ORM's unit of work: this runs while holding
            # the database's write lock, which every other writer waits on.
            session.execute(_INSERT_FILE, values)
    except BaseException:
        # The row did not commit: the bytes must not stay behind without it.
        upload.abort()
        raise
    metrics.count_upload_accepted("multipart")
    return File(**values)


# ---- reading -------------------------------------------------------------------------


def parse_file_id(raw: str) -> str:
    """A canonical UUID string; anything else is simply a file that does not exist."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound("not_found", "file not found") from None


def get_file(organization_id: int, raw_id: str, for_update: bool = False) -> File:
    """One of the organization's files, or NotFound."""
    return get_scoped_or_404(
        File, parse_file_id(raw_id), organization_id, what="file", for_update=for_update
    )


def get_ready_file(organization_id: int, raw_id: str) -> File:
    """One of the organization's files whose bytes may be read: only a `ready` one."""
    row = get_file(organization_id, raw_id)
    if row.status != FileStatus.READY:
        raise Conflict("not_ready", f"the file is {row.status}, not ready", status=row.status)
    return row


def content_type(row: File) -> str:
    """The Content-Type a ready file's bytes are served with (active types made opaque)."""
    return served_type(row.mime_type)


def presigned_download(row: File) -> str | None:
    """A URL the store serves a ready file's bytes at itself, when the backend gives one."""
    return get_storage().download_url(row.file_path, row.filename, content_type(row))


def open_bytes(row: File) -> IO[bytes]:
    """A reader of a ready file's bytes; 410 `file_missing` when they are gone."""
    try:
        return get_storage().open(row.file_path)
    except FileNotFoundError:
        # Lost outside Coffer (a restore without the bytes, a bucket emptied by hand):
        # `manage.py storage check` lists it.
        log.error(
            "the bytes of ready file %s are missing from storage",
            row.id,
            extra={"file_id": row.id},
        )
        raise Gone(
            "file_missing",
            "the file's bytes are missing from storage; ask an administrator to restore them",
        ) from None


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    rows: list[tuple[File, str | None]]
    total: int
    next_cursor: str | None
    # Set when newer rows exist before this page (a page reached by cursor).
    prev_cursor: str | None = None


def encode_cursor(row: File) -> str:
    """An opaque cursor pointing just after this row in newest-first order."""
    raw = f"{row.uploaded_at.isoformat(timespec='microseconds')}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (uploaded_at, id) a cursor points after; InvalidInput when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, file_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(stamp), str(uuid.UUID(file_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid_parameter", "cursor is not valid", field="cursor") from None


def list_files(
    organization_id: int,
    *,
    status: FileStatus | None,
    limit: int,
    page: int = 1,
    cursor: str | None = None,
    newer: bool = False,
) -> Page:
    """The organization's files newest first (ties by id), by page number or cursor.

    With `newer`, the page is the one just before the cursor (the rows newer than it).
    """
    query = scoped(File, organization_id)
    if status is not None:
        query = query.where(File.status == status)
    if status is None:
        # The kept counter: no COUNT over the table per request.
        total = db.session.scalar(
            select(Organization.file_count).where(Organization.id == organization_id)
        )
    else:
        # The database's own counter of the status (no COUNT over the rows either).
        total = db.session.scalar(
            select(STATUS_COUNTERS[status]).where(Organization.id == organization_id)
        )
    newest_first = (File.uploaded_at.desc(), File.id.desc())
    # The page's ids come from the covering index alone; only those rows are then read.
    oldest_first = (File.uploaded_at.asc(), File.id.asc())
    keys = query.with_only_columns(File.id).limit(limit + 1)
    if cursor:
        after_time, after_id = decode_cursor(cursor)
        # A row-value comparison is one index range on SQLite and PostgreSQL alike (an
        # OR of two conditions makes SQLite walk the index from the newest row).
        key, mark = tuple_(File.uploaded_at, File.id), tuple_(after_time, after_id)
        if newer:
            keys = keys.where(key > mark).order_by(*oldest_first)
        else:
            keys = keys.where(key < mark).order_by(*newest_first)
    else:
        keys = keys.order_by(*newest_first)
        keys = keys.offset((page - 1) * limit)
    page_ids = keys.subquery()
    page_query = (
        select(File, User.email)
        .join(page_ids, page_ids.c.id == File.id)
        .outerjoin(User, User.id == File.uploaded_by)
        .order_by(*newest_first)
    )
    rows: list[tuple[File, str | None]] = [
        (f, email) for f, email in db.session.execute(page_query).all()
    ]
    more = len(rows) > limit
    if newer and cursor:
        # The extra row is the newest one: it says a still newer page exists.
        rows = rows[1:] if more else rows
        prev_cursor = encode_cursor(rows[0][0]) if more and rows else None
        next_cursor = encode_cursor(rows[-1][0]) if rows else None
    else:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][0]) if more and rows else None
        prev_cursor = encode_cursor(rows[0][0]) if cursor and rows else None
    return Page(rows=rows, total=int(total or 0), next_cursor=next_cursor, prev_cursor=prev_cursor)


def page_count(total: int, limit: int) -> int:
    """How many pages of `limit` hold `total` rows."""
    return math.ceil(total / limit) if total else 0


# ---- deletion ------------------------------------------------------------------------


def delete_file(user: User, raw_id: str) -> None:
    """Delete a file (its uploader or an admin): row and quota at once, then the bytes."""
    with write_transaction() as session:
        row = get_file(user.organization_id, raw_id, for_update=True)
        if not policy.may_delete_file(user, row.uploaded_by):
            raise NotAllowed("forbidden", "only the uploader or an admin can delete this file")
        # Read while the row exists: the file.deleted event tells what was deleted.
        snapshot = webhooks.file_snapshot(row)
        # Its share links go with it (ON DELETE CASCADE).
        session.delete(row)
        release_quota(row.organization_id, row.size if row.bytes_stored else 0, files=1)
    # After the commit: a crash here leaves bytes without a row, which
    # `manage.py storage check --fix` removes; never a row without bytes.
    get_storage().remove(row.file_path)
    webhooks.emit(webhooks.FILE_DELETED, row.organization_id, snapshot)


# ---- status moves --------------------------------------------------------------------


def move(
    organization_id: int,
    file_id: str,
    to: FileStatus,
    *,
    keep_bytes: bool = False,
    **values: Any,
) -> bool:
    """Move a file to `to` if its current status allows it; False when it did not move.

    The one place `status` changes: one conditional UPDATE, so two runs of a job can
    never both make the same move. A file failed for its content loses its bytes here
    when DELETE_FAILED_FILES is set; `keep_bytes` (validation gave up, the content was
    never judged) keeps them, so `jobs requeue-failed` can still save the file.
    """
    return _move(organization_id, file_id, to, values, keep_bytes=keep_bytes) is not None


@dataclass(frozen=True)
class Claim:
    """What validation needs of a file it has moved to `processing`."""

    file_path: str
    size: int
    filename: str
    # The digest recorded as the bytes arrived (a resumable upload's), or None.
    sha256: str | None


def claim_for_validation(organization_id: int, file_id: str) -> Claim | None:
    """Move a file to `processing` and read what validation needs, in one statement.

    None when the file is gone or already has its verdict.
    """
    moved = _move(
        organization_id,
        file_id,
        FileStatus.PROCESSING,
        {},
        returning=(File.file_path, File.size, File.filename, File.sha256),
    )
    return Claim(*moved[1]) if moved is not None else None


def record_verdict(organization_id: int, file_id: str, **values: Any) -> FileStatus | None:
    """Mark a validated file `ready`, or `failed` if its organization is now over quota.

    The organization can be over its quota only when the quota was lowered after the
    upload. The quota is read and the verdict written in one transaction. Returns the
    status recorded, or None when the file was no longer in `processing` (deleted).
    """
    moved = _move(organization_id, file_id, FileStatus.READY, values, quota_gate=True)
    return moved[0] if moved is not None else None


def status_of(organization_id: int, file_id: str) -> str | None:
    """A file's current status, or None when it does not exist."""
    return db.session.scalar(
        scoped(File, organization_id).with_only_columns(File.status).where(File.id == file_id)
    )


def _move(
    organization_id: int,
    file_id: str,
    to: FileStatus,
    values: dict[str, Any],
    *,
    returning: tuple[Any, ...] = (),
    quota_gate: bool = False,
    keep_bytes: bool = False,
) -> tuple[FileStatus, tuple[Any, ...]] | None:
    """The conditional UPDATE behind every move, in its own transaction.

    Returns the status moved to and the `returning` columns, or None when nothing moved.
    `quota_gate` turns the move into `failed` when the organization is over its quota.
    """
    dropped: str | None = None
    with write_transaction() as session:
        if quota_gate and not within_quota(organization_id):
            to, values = FileStatus.FAILED, {"error_message": OVER_QUOTA_MESSAGE}
        if to in FINAL_STATUSES:
            values["processed_at"] = utcnow()
        elif to is FileStatus.PENDING:
            # Sent back for another run: no verdict stands until it ends.
            values["processed_at"] = None
        statement = _move_statement(to, tuple(values), returning)
        params = {"moved_org": organization_id, "moved_file": file_id}
        params.update((f"new_{column}", value) for column, value in values.items())
        if returning:
            found = session.execute(statement, params).first()
            moved = tuple(found) if found is not None else None
        else:
            rowcount = session.execute(statement, params).rowcount  # type: ignore[attr-defined]
            moved = () if rowcount == 1 else None
        if moved is None:
            return None
        if to is FileStatus.FAILED and not keep_bytes and current_app.config["DELETE_FAILED_FILES"]:
            dropped = _drop_bytes(organization_id, file_id)
    if dropped is not None:
        get_storage().remove(dropped)
    # The job logs each verdict; every move is there for debugging.
    log.debug("file %s is %s", file_id, to, extra={"file_id": file_id, "status": str(to)})
    return to, moved


@functools.cache
def _move_statement(to: FileStatus, columns: tuple[str, ...], returning: tuple[Any, ...]) -> Any:
    """The UPDATE for one kind of move, built once per kind (docs/PERFORMANCE.md says why)."""
    statement = (
        update(File)
        .where(
            in_organization(File, bindparam("moved_org")),
            File.id == bindparam("moved_file"),
            # Equalities rather than IN: an IN list is re-rendered on every run.
            or_(*(File.status == status for status in ALLOWED_MOVES[to])),
        )
        .values(status=to, **{column: bindparam(f"new_{column}") for column in columns})
        # Nothing in the session holds the row: no need to look for it there.
        .execution_options(synchronize_session=False)
    )
    return statement.returning(*returning) if returning else statement


def _drop_bytes(organization_id: int, file_id: str) -> str | None:
    """Mark a file's bytes gone and free their quota; returns the path to remove."""
    row = db.session.execute(
        select(File.size, File.file_path, File.bytes_stored).where(
            in_organization(File, organization_id), File.id == file_id
        )
    ).one()
    if not row.bytes_stored:
        return None
    db.session.execute(
        update(File)
        .where(in_organization(File, organization_id), File.id == file_id)
        .values(bytes_stored=False)
    )
    release_quota(organization_id, row.size, files=0)
    return str(row.file_path)
