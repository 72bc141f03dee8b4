"""Intake: every way a file's bytes arrive ends here, in one all-or-nothing step that
stores them, records the row within the quota (a new file, or with `on_conflict=replace` a
new version of the file that has the name), queues validation and counts the upload."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, insert

from .. import metrics, units
from ..database import write_transaction
from ..extensions import db
from ..models import File, FileStatus, User, utcnow
from ..services import activity
from ..services.errors import InvalidInput, NotAllowed, TooLarge
from ..services.queue import enqueue_validation
from ..storage import Upload, display_name, get_storage, object_key
from . import names, policy, versions
from .folders import check_folder
from .ledger import check_room
from .names import OnConflict


def max_file_size() -> int:
    """The largest file in bytes (MAX_FILE_SIZE)."""
    return int(current_app.config["MAX_FILE_SIZE"])


def check_size(size: int, *, field: str, allow_empty: bool = False) -> None:
    """The size rule for a file however it arrives: not empty (unless `allow_empty`: a
    WebDAV client's empty file, written again at once), not over MAX_FILE_SIZE."""
    if size == 0 and not allow_empty:
        raise InvalidInput("empty_file", "the file is empty", field=field)
    if size > max_file_size():
        raise TooLarge(
            "file_too_large",
            f"the file is larger than the limit of {units.size(max_file_size())}",
        )


_INSERT_FILE = insert(cast(Table, File.__table__))


class Receiving:
    """A file's bytes arriving in one request body, streamed into storage under a fresh id
    as they come; `accept` records them, anything else leaves them to `discard`."""

    def __init__(self, organization_id: int, raw_name: str, via: str) -> None:
        self.file_id = str(uuid.uuid4())
        self.display_name = display_name(raw_name)
        self.organization_id = int(organization_id)
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
    return Receiving(user.organization_id, raw_name, via)


def receive_into(organization_id: int, raw_name: str, *, via: str) -> Receiving:
    """Begin receiving a file sent to the organization by someone without an account (an
    upload-only link's visitor)."""
    return Receiving(organization_id, raw_name, via)


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
    via_request: int | None = None,
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
        "uploaded_via_request": via_request,
    }


@dataclass(frozen=True)
class Accepted:
    """What an upload became: a new file (version 1), or a new version of the file that
    had the name (`version_id` names the version's row, `pending` until validated)."""

    file_id: str
    filename: str
    size: int
    version: int
    version_id: str | None = None


def arrive(
    *,
    uploader: User | None,
    new_id: str,
    organization_id: int,
    folder_id: str | None,
    filename: str,
    key: str,
    size: int,
    sha256: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
    strict: bool = True,
    actor: activity.Actor | None = None,
    via_request: int | None = None,
) -> Accepted:
    """Record bytes that have all arrived under `key` (their id `new_id`), inside the write
    transaction; the caller checks the quota.

    With `replace`, onto a file of the folder that has the name: a new version of it (403
    for a user who may not change it); onto a folder: 409 `name_taken`; else a new file.
    `strict=False` (a resumable upload's last byte: a client told 403 or 409 now could only
    send it all again) numbers the name as `rename` does instead of refusing. The activity
    record names `actor`, by default the uploader (by the request's token, if any);
    `via_request` the upload-only link the bytes came through (the uploader is None then).
    """
    if actor is None:
        actor = activity.SYSTEM if uploader is None else activity.acting(uploader)
    names.lock_names(organization_id)
    if on_conflict is OnConflict.REPLACE:
        target = versions.replaceable(organization_id, folder_id, filename)
        allowed = target is not None and (
            uploader is not None and policy.may_change_file(uploader, target.uploaded_by)
        )
        if target is not None and not allowed and strict:
            raise NotAllowed("forbidden", versions.CHANGE_REFUSED)
        if target is not None and allowed:
            number = versions.add_version(
                target,
                version_id=new_id,
                key=key,
                size=size,
                uploaded_by=None if uploader is None else uploader.id,
                sha256=sha256,
            )
            activity.record(
                "file.version_added",
                organization_id,
                actor,
                activity.on_file(target.id, target.filename),
            )
            return Accepted(target.id, target.filename, size, number, new_id)
        # No file has the name: a new file, which a folder of that name refuses (409).
        on_conflict = OnConflict.FAIL if strict else OnConflict.RENAME
    values = file_values(
        file_id=new_id,
        organization_id=organization_id,
        uploaded_by=None if uploader is None else uploader.id,
        folder_id=folder_id,
        filename=filename,
        key=key,
        size=size,
        sha256=sha256,
        on_conflict=on_conflict,
        via_request=via_request,
    )
    # A plain INSERT rather than the ORM's unit of work: this runs while holding the
    # database's write lock, which every other writer waits on.
    db.session.execute(_INSERT_FILE, values)
    activity.record(
        "file.uploaded", organization_id, actor, activity.on_file(new_id, str(values["filename"]))
    )
    return Accepted(new_id, str(values["filename"]), size, 1)


def admitted(accepted: Accepted, organization_id: int, *, via: str) -> None:
    """What follows every committed file or version row: its validation is queued and the
    upload counted."""
    metrics.count_upload_accepted(via)
    if accepted.version_id is not None:
        enqueue_validation(accepted.version_id, organization_id, version=True)
    else:
        enqueue_validation(accepted.file_id, organization_id)


def accept(
    user: User,
    receiving: Receiving,
    *,
    folder_id: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
    allow_empty: bool = False,
) -> Accepted:
    """Record a fully received file (or new version of one) within the quota and queue its
    validation; all or nothing. Only WebDAV keeps an empty file (`allow_empty`): file
    managers make one before they write its bytes.

    The bytes are made durable first, outside the write lock; if the quota refuses them or the
    row does not commit, they are removed again.
    """

    def record() -> Accepted:
        if folder_id is not None:
            check_folder(user.organization_id, folder_id)
        return arrive(
            uploader=user,
            new_id=receiving.file_id,
            organization_id=user.organization_id,
            folder_id=folder_id,
            filename=receiving.display_name,
            key=receiving.upload.key,
            size=receiving.upload.size,
            on_conflict=on_conflict,
        )

    return settle(receiving, user.organization_id, record, allow_empty=allow_empty)


def settle(
    receiving: Receiving,
    organization_id: int,
    record: Callable[[], Accepted],
    *,
    allow_empty: bool = False,
) -> Accepted:
    """The all-or-nothing end of every request body's upload (a member's, or a visitor's
    through an upload-only link): the name and size rules, the bytes made durable outside
    the write lock, then `record` (the row, by `arrive`) and the quota's check in one write
    transaction; the bytes removed again if that does not commit; validation queued."""
    upload = receiving.upload
    if not receiving.display_name:
        raise InvalidInput("invalid_filename", "the file name is empty", field="file")
    check_size(upload.size, field="file", allow_empty=allow_empty)
    try:
        upload.finish()
        with write_transaction():
            accepted = record()
            # The row's triggers added its bytes to the organization's usage: they must fit.
            check_room(organization_id, upload.size)
    except BaseException:
        # The row did not commit: the bytes must not stay behind without it.
        upload.abort()
        raise
    receiving.accepted = True
    admitted(accepted, organization_id, via=receiving.via)
    return accepted
