"""Intake: every way a file's bytes arrive ends here, in one all-or-nothing step that
reserves the quota, records the row, queues validation and counts the upload."""

from __future__ import annotations

from typing import cast

from flask import current_app
from sqlalchemy import Table, insert

from .. import metrics, units
from ..database import write_transaction
from ..models import File, FileStatus, User, utcnow
from ..services.errors import InvalidInput, TooLarge
from ..storage import Upload
from .ledger import check_room


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
            # The row's triggers added its bytes to the organization's usage: they must fit.
            check_room(user.organization_id, upload.size)
    except BaseException:
        # The row did not commit: the bytes must not stay behind without it.
        upload.abort()
        raise
    metrics.count_upload_accepted("multipart")
    return File(**values)
