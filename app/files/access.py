"""Reading one file: lookup by id within the organization, and its bytes."""

from __future__ import annotations

import logging
import uuid
from typing import IO

from ..models import File, FileStatus
from ..services.content import served_type
from ..services.errors import Conflict, Gone, NotFound
from ..services.tenancy import get_scoped_or_404
from ..storage import get_storage

log = logging.getLogger(__name__)


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


def presigned_download(key: str, filename: str, content_type: str) -> str | None:
    """A URL the store serves these bytes at itself, when the backend gives one."""
    return get_storage().download_url(key, filename, content_type)


def open_bytes(row: File) -> IO[bytes]:
    """A reader of a ready file's bytes; 410 `file_missing` when they are gone."""
    return open_stored(row.file_path, row.id)


def open_stored(key: str, file_id: str) -> IO[bytes]:
    """A reader of the bytes a file (or a version of it) keeps at `key`; 410 `file_missing`
    when they are gone."""
    try:
        return get_storage().open(key)
    except FileNotFoundError:
        # Lost outside Coffer (a restore without the bytes, a bucket emptied by hand):
        # `manage.py storage check` lists it.
        log.error(
            "the bytes of file %s are missing from storage",
            file_id,
            extra={"file_id": file_id},
        )
        raise Gone(
            "file_missing",
            "the file's bytes are missing from storage; ask an administrator to restore them",
        ) from None
