"""Intake: every way a file's bytes arrive ends here, in one all-or-nothing step that
stores them, records the row within the quota, queues validation and counts the upload."""

from __future__ import annotations

import uuid
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, insert

from .. import metrics, units
from ..database import write_transaction
from ..models import File, FileStatus, Folder, User, utcnow
from ..services.errors import InvalidInput, TooLarge
from ..services.queue import enqueue_validation
from ..services.tenancy import get_scoped_or_404
from ..storage import Upload, display_name, get_storage, object_key
from . import names
from .ledger import check_room
from .names import OnConflict


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


def check_on_conflict(on_conflict: OnConflict) -> None:
    """The choices an upload has when its name is taken: `replace` waits for versions."""
    if on_conflict is OnConflict.REPLACE:
        raise InvalidInput(
            "invalid_field",
            "on_conflict=replace is not available yet: use rename or fail",
            field="on_conflict",
        )


_INSERT_FILE = insert(cast(Table, File.__table__))


class Receiving:
    """A file's bytes arriving in one request body, streamed into storage under a fresh id
    as they come; `accept` records them, anything else leaves them to `discard`."""

    def __init__(self, user: User, raw_name: str, via: str) -> None:
        self.file_id = str(uuid.uuid4())
        self.display_name = display_name(raw_name)
        self.organization_id = int(user.organization_id)
        self.via = via
        self.accepted = False
        self.upload: Upload = get_storage().begin_upload(
            object_key(self.organization_id, self.file_id, self.display_name)
        )

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self.upload.size

    def write(self, data: bytes) -> int:
        """Pass a chunk on to the store."""
        metrics.count_bytes_received(self.via, len(data))
        return self.upload.write(data)

    def discard(self) -> None:
        """Remove the bytes unless they were accepted (the end of every request that
        received them calls this)."""
        if not self.accepted:
            self.upload.abort()


def receive(user: User, raw_name: str, *, via: str) -> Receiving:
    """Begin receiving a file the user sends under `raw_name` (as the client sent it)."""
    return Receiving(user, raw_name, via)


def file_values(
    *,
    file_id: str,
    organization_id: int,
    uploaded_by: int | None,
    folder_id: str | None,
    filename: str,
    key: str,
    size: int,
    sha256: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
) -> dict[str, Any]:
    """The new row of a file whose bytes have all arrived, `pending` until validated, under
    the name it takes in its folder (see names.take). Run in the write transaction."""
    names.lock_names(organization_id)
    filename, name_key = names.take(
        organization_id, folder_id, filename, on_conflict, field="filename"
    )
    return {
        "id": file_id,
        "filename": filename,
        "name_key": name_key,
        "folder_id": folder_id,
        "file_path": key,
        "size": size,
        "sha256": sha256,
        "status": FileStatus.PENDING,
        "bytes_stored": True,
        "organization_id": organization_id,
        "uploaded_by": uploaded_by,
        "uploaded_at": utcnow(),
    }


def admitted(file_id: str, organization_id: int, *, via: str) -> None:
    """What follows every committed file row: its validation is queued and it is counted."""
    metrics.count_upload_accepted(via)
    enqueue_validation(file_id, organization_id)


def accept(
    user: User,
    receiving: Receiving,
    *,
    folder_id: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
) -> File:
    """Record a fully received file within the quota and queue its validation; all or
    nothing.

    The bytes are made durable first, outside the write lock; if the quota refuses them or the
    row does not commit, they are removed again.
    """
    upload = receiving.upload
    check_on_conflict(on_conflict)
    if not receiving.display_name:
        raise InvalidInput("invalid_filename", "the file name is empty", field="file")
    check_size(upload.size, field="file")
    try:
        upload.finish()
        with write_transaction() as session:
            if folder_id is not None:
                get_scoped_or_404(Folder, folder_id, user.organization_id, what="folder")
            values = file_values(
                file_id=receiving.file_id,
                organization_id=user.organization_id,
                uploaded_by=user.id,
                folder_id=folder_id,
                filename=receiving.display_name,
                key=upload.key,
                size=upload.size,
                on_conflict=on_conflict,
            )
            # A plain INSERT rather than the ORM's unit of work: this runs while holding
            # the database's write lock, which every other writer waits on.
            session.execute(_INSERT_FILE, values)
            # The row's triggers added its bytes to the organization's usage: they must fit.
            check_room(user.organization_id, upload.size)
    except BaseException:
        # The row did not commit: the bytes must not stay behind without it.
        upload.abort()
        raise
    receiving.accepted = True
    admitted(receiving.file_id, user.organization_id, via=receiving.via)
    return File(**values)
