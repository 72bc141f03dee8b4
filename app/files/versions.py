"""A file's versions: adding one (an upload with `on_conflict=replace`), listing them,
reading an older one's bytes, and restoring one as a new newest version.

The file's row holds the version it answers with (its `version` number); `file_versions`
holds the others: older ones, and newer ones not yet validated. A new version becomes what
the file answers with once it is `ready` (lifecycle.promote); the newest `versions_kept`
are kept (lifecycle.prune_versions).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import func, insert, select

from ..database import write_transaction
from ..extensions import db
from ..libc import READ_BUFFER
from ..models import File, FileStatus, FileVersion, User, utcnow
from ..services import webhooks
from ..services.errors import Conflict, Gone, NotAllowed, NotFound
from ..services.queue import enqueue_previews, enqueue_validation
from ..services.tenancy import in_organization, scoped
from ..storage import get_storage, object_key
from . import access, lifecycle, names, policy, previews
from .ledger import check_room

log = logging.getLogger(__name__)

# How much of a version's bytes a restore copies at a time.
COPY_CHUNK = READ_BUFFER
CHANGE_REFUSED = "only the uploader or an admin can add a version of this file"


@dataclass(frozen=True)
class VersionInfo:
    """One version of a file as listed; `current` is the one the file answers with."""

    version: int
    size: int
    sha256: str | None
    status: str
    uploaded_at: datetime
    uploaded_by_email: str | None
    current: bool


# ---- adding a version ----------------------------------------------------------------


def replaceable(organization_id: int, place: str | None, filename: str) -> File | None:
    """The file (not in the trash) of the place that has this name, which an upload with
    `on_conflict=replace` adds a version to; None when no file has it. Run in the write
    transaction, after names.lock_names."""
    key = names.key_of(filename, field="filename")
    return db.session.scalars(
        scoped(File, organization_id)
        .where(File.name_key == key)
        .where(File.folder_id.is_(None) if place is None else File.folder_id == place)
    ).first()


def check_may_replace(user: User, target: File) -> None:
    """Refuse (403) a new version of a file the user may not change (as renaming it)."""
    if not policy.may_change_file(user, target.uploaded_by):
        raise NotAllowed("forbidden", CHANGE_REFUSED)


def next_number(organization_id: int, file_id: str, current: int) -> int:
    """The number of a file's next version: one past the highest it has. Run under
    names.lock_names, so two new versions never take one number."""
    highest = db.session.scalar(
        select(func.max(FileVersion.version)).where(
            in_organization(FileVersion, organization_id), FileVersion.file_id == file_id
        )
    )
    return max(current, int(highest or 0)) + 1


def add_version(
    target: File,
    *,
    version_id: str,
    key: str,
    size: int,
    uploaded_by: int | None,
    sha256: str | None = None,
) -> int:
    """Record bytes that have all arrived as a new version of `target`, `pending` until
    validated; returns its number. The caller checks the quota (its bytes count from this
    row: the database's triggers) and queues its validation after the commit."""
    number = next_number(target.organization_id, target.id, target.version)
    db.session.execute(
        insert(FileVersion).values(
            id=version_id,
            file_id=target.id,
            organization_id=target.organization_id,
            version=number,
            file_path=key,
            size=size,
            sha256=sha256,
            status=FileStatus.PENDING,
            bytes_stored=True,
            uploaded_by=uploaded_by,
            uploaded_at=utcnow(),
        )
    )
    return number


def holds_upload(organization_id: int, key: str) -> bool:
    """Whether a file's version (the one it answers with, or another), of a file not in the
    trash, has its bytes under this key: a finished upload that added a version."""
    version = db.session.scalar(
        select(FileVersion.id)
        .join(File, File.id == FileVersion.file_id)
        .where(
            in_organization(FileVersion, organization_id),
            FileVersion.file_path == key,
            File.trashed_at.is_(None),
        )
    )
    if version is not None:
        return True
    return (
        db.session.scalar(
            scoped(File, organization_id).with_only_columns(File.id).where(File.file_path == key)
        )
        is not None
    )


# ---- reading -------------------------------------------------------------------------


def list_versions(user: User, raw_file_id: str) -> list[VersionInfo]:
    """Every version of a file the organization has, newest first (any member)."""
    row = access.get_file(user.organization_id, raw_file_id)
    current = VersionInfo(
        version=row.version,
        size=row.size,
        sha256=row.sha256,
        status=row.status,
        uploaded_at=row.uploaded_at,
        uploaded_by_email=row.uploader.email if row.uploader else None,
        current=True,
    )
    others = db.session.execute(
        select(
            FileVersion.version,
            FileVersion.size,
            FileVersion.sha256,
            FileVersion.status,
            FileVersion.uploaded_at,
            User.email,
        )
        .outerjoin(User, User.id == FileVersion.uploaded_by)
        .where(in_organization(FileVersion, user.organization_id), FileVersion.file_id == row.id)
    ).all()
    db.session.rollback()
    found = [current, *(VersionInfo(*other, current=False) for other in others)]
    return sorted(found, key=lambda info: info.version, reverse=True)


def version_file(user: User, raw_file_id: str, number: int) -> File:
    """Version `number` of a file, as a file (not stored as one) that a download serves:
    its bytes, type, size and digest under the file's id and name. Ready versions only
    (409 `not_ready`); 404 for a number the file does not have."""
    row = access.get_file(user.organization_id, raw_file_id)
    if number == row.version:
        content: Any = row
    else:
        content = db.session.scalars(
            select(FileVersion).where(
                in_organization(FileVersion, user.organization_id),
                FileVersion.file_id == row.id,
                FileVersion.version == number,
            )
        ).first()
        if content is None:
            raise NotFound("not_found", f"the file has no version {number}")
    if content.status != FileStatus.READY or not content.bytes_stored:
        raise Conflict(
            "not_ready",
            f"version {number} is {content.status}, not ready",
            status=content.status,
        )
    served = File(
        id=row.id,
        organization_id=row.organization_id,
        folder_id=row.folder_id,
        filename=row.filename,
        file_path=content.file_path,
        size=content.size,
        mime_type=content.mime_type,
        sha256=content.sha256,
        crc32=content.crc32,
        status=content.status,
        uploaded_at=content.uploaded_at,
        version=number,
    )
    db.session.rollback()
    return served


def open_version(user: User, raw_file_id: str, number: int) -> tuple[File, IO[bytes]]:
    """Version `number` of a file (see version_file) and a reader of its bytes; 410
    `file_missing` when they are gone from storage."""
    served = version_file(user, raw_file_id, number)
    return served, access.open_bytes(served)


# ---- restoring -----------------------------------------------------------------------


def restore_version(user: User, raw_file_id: str, number: int) -> VersionInfo:
    """Make version `number` the file's newest: its bytes copied under a new version,
    within the quota (507 stores nothing), ready at once (the content was validated) and
    answered by the file. Its uploader or an admin (as changing the file)."""
    organization_id = user.organization_id
    row = access.get_file(organization_id, raw_file_id)
    if not policy.may_change_file(user, row.uploaded_by):
        raise NotAllowed("forbidden", "only the uploader or an admin can restore a version")
    source = version_file(user, raw_file_id, number)
    file_id, version_id = source.id, str(uuid.uuid4())
    key = object_key(organization_id, version_id, source.filename)
    _copy(source.file_path, key)
    try:
        with write_transaction() as session:
            names.lock_names(organization_id)
            current = access.get_file(organization_id, file_id, for_update=True)
            restored = next_number(organization_id, file_id, current.version)
            now = utcnow()
            session.execute(
                insert(FileVersion).values(
                    id=version_id,
                    file_id=file_id,
                    organization_id=organization_id,
                    version=restored,
                    file_path=key,
                    size=source.size,
                    mime_type=source.mime_type,
                    sha256=source.sha256,
                    crc32=source.crc32,
                    status=FileStatus.READY,
                    bytes_stored=True,
                    uploaded_by=user.id,
                    uploaded_at=now,
                    processed_at=now,
                )
            )
            # The copy's bytes count from its row (the database's triggers): they must fit.
            check_room(organization_id, source.size)
            promotion = lifecycle.promote(organization_id, version_id)
    except BaseException:
        # The row did not commit: the copy must not stay behind without it.
        get_storage().remove(key)
        raise
    if promotion.unjudged is not None:
        enqueue_validation(promotion.unjudged, organization_id, version=True)
    if promotion.promoted and previews.wanted(source.mime_type):
        # The restored copy is ready at once, without a validation job to queue these.
        enqueue_previews(file_id, organization_id)
    lifecycle.prune_versions(organization_id, file_id)
    webhooks.file_event(organization_id, file_id, webhooks.FILE_VERSION_ADDED)
    log.info(
        "version %d of file %s restored as version %d",
        number,
        file_id,
        restored,
        extra={"file_id": file_id},
    )
    return VersionInfo(
        version=restored,
        size=source.size,
        sha256=source.sha256,
        status=FileStatus.READY,
        uploaded_at=now,
        uploaded_by_email=user.email,
        current=True,
    )


def _copy(source: str, key: str) -> None:
    """Copy stored bytes to a new key through the store; nothing is left at `key` when
    the copy fails."""
    storage = get_storage()
    try:
        reader = storage.open(source)
    except FileNotFoundError:
        raise Gone(
            "file_missing",
            "the version's bytes are missing from storage; ask an administrator to restore them",
        ) from None
    upload = storage.begin_upload(key)
    try:
        with reader:
            while chunk := reader.read(COPY_CHUNK):
                upload.write(chunk)
        upload.finish()
    except BaseException:
        upload.abort()
        raise
