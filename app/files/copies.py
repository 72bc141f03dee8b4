"""Copying a file: a new file of the same bytes, copied through storage within the quota and
validated as any upload is."""

from __future__ import annotations

import uuid

from ..database import write_transaction
from ..libc import READ_BUFFER
from ..models import User
from ..services.errors import Gone
from ..storage import get_storage, object_key
from . import intake, names
from .folders import check_folder
from .intake import Accepted
from .ledger import check_room, quota_exceeded
from .names import OnConflict
from .tree import Entry, usage

COPY_CHUNK = READ_BUFFER


def copy_file(user: User, source: Entry, folder_id: str | None, name: str, *, via: str) -> Accepted:
    """A new file named `name` in a place (None: the top level) holding the bytes `user`
    reads of `source`; with a file of that name there, a new version of it. 507 before any
    byte is copied when the copy cannot fit; the copy is validated as an upload is."""
    organization_id = user.organization_id
    name = names.checked_name(name, field="filename")
    room = usage(organization_id)
    if source.size > room.available:
        raise quota_exceeded(organization_id, source.size)
    new_id = str(uuid.uuid4())
    key = object_key(organization_id, new_id, name)
    _copy_bytes(source.key, key)
    try:
        with write_transaction():
            if folder_id is not None:
                check_folder(organization_id, folder_id)
            accepted = intake.arrive(
                uploader=user,
                new_id=new_id,
                organization_id=organization_id,
                folder_id=folder_id,
                filename=name,
                key=key,
                size=source.size,
                on_conflict=OnConflict.REPLACE,
            )
            # The row's triggers added the bytes to the organization's usage: they must fit
            # (checked again: another upload may have taken the room since).
            check_room(organization_id, source.size)
    except BaseException:
        get_storage().remove(key)
        raise
    intake.admitted(accepted, organization_id, via=via)
    return accepted


def _copy_bytes(source: str, key: str) -> None:
    """Copy stored bytes to a new key through the store, chunk by chunk; nothing is left at
    `key` when the copy fails."""
    storage = get_storage()
    try:
        reader = storage.open(source)
    except FileNotFoundError:
        raise Gone("file_missing", "the file's bytes are missing from storage") from None
    upload = storage.begin_upload(key)
    try:
        with reader:
            while chunk := reader.read(COPY_CHUNK):
                upload.write(chunk)
        upload.finish()
    except BaseException:
        upload.abort()
        raise
