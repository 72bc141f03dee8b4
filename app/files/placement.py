"""A file's place: renaming it and moving it to another folder.

Neither copies bytes: the object key stays what it was at upload, and the download's name
is the row's. A file that failed only because its content did not match its extension is
validated again once renamed: the new name may be the right one.
"""

from __future__ import annotations

import logging

from ..database import write_transaction
from ..extensions import db
from ..models import File, FileStatus, User
from ..services import activity, content
from ..services.errors import NotAllowed
from ..services.queue import enqueue_again
from . import lifecycle, names, policy
from .access import get_file
from .folders import check_place
from .names import OnConflict

log = logging.getLogger(__name__)


def change_file(
    user: User,
    raw_id: str,
    *,
    filename: str | None = None,
    folder_raw: str | None = None,
) -> File:
    """Rename a file and/or move it to another folder (`root`: the top level); None
    leaves that part as it is. Its uploader or an admin; 409 `name_taken` when the
    destination has the name. Returns the file as it now is."""
    organization_id = user.organization_id
    new_name = None if filename is None else names.checked_name(filename, field="filename")
    with write_transaction():
        row = get_file(organization_id, raw_id, for_update=True)
        if not policy.may_change_file(user, row.uploaded_by):
            raise NotAllowed("forbidden", "only the uploader or an admin can change this file")
        folder_id = (
            row.folder_id if folder_raw is None else check_place(organization_id, folder_raw)
        )
        names.lock_names(organization_id)
        wanted = row.filename if new_name is None else new_name
        renamed = wanted != row.filename
        if renamed or folder_id != row.folder_id:
            wanted, key = names.take(
                organization_id,
                folder_id,
                wanted,
                OnConflict.FAIL,
                except_file=row.id,
                field="filename",
            )
            revalidate = renamed and _failed_on_its_name(row)
            actor, target = activity.acting(user), activity.on_file(row.id, wanted)
            if wanted != row.filename:
                activity.record("file.renamed", organization_id, actor, target)
            if folder_id != row.folder_id:
                activity.record("file.moved", organization_id, actor, target)
            row.filename, row.name_key, row.folder_id = wanted, key, folder_id
        else:
            revalidate = False
    if revalidate:
        _validate_again(organization_id, row)
        # The move was one UPDATE of its own: read the row as it now is.
        db.session.refresh(row)
    return row


def _failed_on_its_name(row: File) -> bool:
    """Whether the file failed only because its content did not match its name's extension,
    and its bytes are still there to judge again."""
    return (
        row.status == FileStatus.FAILED
        and row.bytes_stored
        and content.failed_on_extension(row.error_message)
    )


def _validate_again(organization_id: int, row: File) -> None:
    """Send a renamed file back to `pending` and queue its validation.

    After the rename's commit: should this step be lost, the file stays `failed` under its
    new name, and renaming it again sends it back.
    """
    if lifecycle.move(organization_id, row.id, FileStatus.PENDING, error_message=None):
        enqueue_again(row.id, organization_id)
