"""The organization's folders and files as a tree of names, as a member sees it: what a path
names, what a place holds, and which bytes of a file that member reads.

A member sees every `ready` file, and their own uploads still being validated (a new file,
or a new version of a file), so a client reads back at once the bytes it has just put.
Failed files are not shown: their reason is in the activity record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import select

from ..config import MiB
from ..extensions import db
from ..models import File, FileStatus, FileVersion, Folder, Organization, User
from ..services.errors import InvalidInput
from ..services.tenancy import in_organization, live, scoped
from . import listing
from .names import key_of

# Statuses of an upload still being validated: shown to its uploader only.
UNJUDGED = (FileStatus.PENDING, FileStatus.PROCESSING)
# Files read per query when a place's files are listed.
PAGE = 1000


@dataclass(frozen=True)
class Entry:
    """A file as one member sees it: the bytes they read (the ready ones, or the upload of
    theirs being validated) and what describes them."""

    id: str
    name: str
    folder_id: str | None
    key: str
    size: int
    sha256: str | None
    mime_type: str | None
    modified: datetime
    # The id of the row (file or version) whose bytes these are: an upload's own id.
    bytes_id: str
    ready: bool
    uploaded_by: int | None


class FileColumns(Protocol):
    """What `_entry` reads of a file: a `File`, or a row of its columns."""

    @property
    def id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def folder_id(self) -> str | None: ...
    @property
    def file_path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def mime_type(self) -> str | None: ...
    @property
    def uploaded_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def uploaded_by(self) -> int | None: ...


class FileRow(NamedTuple):
    """The columns of a file `_entry` reads (ENTRY_COLUMNS, in their order), selected
    without building ORM objects; as a named tuple, since reading a SQLAlchemy row's column
    by name costs about as much as the rest of a WebDAV listing's work on that file."""

    id: str
    filename: str
    folder_id: str | None
    file_path: str
    size: int
    sha256: str | None
    mime_type: str | None
    uploaded_at: datetime
    status: str
    version: int
    uploaded_by: int | None


# FileRow's columns.
ENTRY_COLUMNS = (
    File.id,
    File.filename,
    File.folder_id,
    File.file_path,
    File.size,
    File.sha256,
    File.mime_type,
    File.uploaded_at,
    File.status,
    File.version,
    File.uploaded_by,
)


def _key(name: str) -> str | None:
    """The compared form of a name; None for one no file or folder can have."""
    try:
        return key_of(name)
    except InvalidInput:
        return None


def folder_named(organization_id: int, place: str | None, name: str) -> Folder | None:
    """The folder (not in the trash) of this name directly in a place."""
    key = _key(name)
    if key is None:
        return None
    query = scoped(Folder, organization_id).where(
        Folder.parent_id.is_(None) if place is None else Folder.parent_id == place,
        Folder.name_key == key,
    )
    return db.session.scalars(query).first()


def file_named(user: User, place: str | None, name: str) -> Entry | None:
    """The file of this name directly in a place, as `user` sees it (None when hidden)."""
    key = _key(name)
    if key is None:
        return None
    query = scoped(File, user.organization_id).where(
        File.folder_id.is_(None) if place is None else File.folder_id == place,
        File.name_key == key,
    )
    row = db.session.scalars(query).first()
    if row is None:
        return None
    return _entry(user, row, _own_versions(user, [row.id]).get(row.id))


def _own_versions(user: User, file_ids: list[str]) -> dict[str, FileVersion]:
    """The newest version being validated that `user` uploaded, of each of these files."""
    if not file_ids:
        return {}
    rows = db.session.scalars(
        select(FileVersion)
        .where(
            in_organization(FileVersion, user.organization_id),
            FileVersion.file_id.in_(file_ids),
            FileVersion.uploaded_by == user.id,
            FileVersion.status.in_(UNJUDGED),
        )
        .order_by(FileVersion.version)
    )
    return {version.file_id: version for version in rows}


def _entry(user: User, row: FileColumns, own: FileVersion | None) -> Entry | None:
    """What `user` sees of a file: their newer upload being validated, else the ready file,
    else their own file being validated; None for anything else."""
    if own is not None and own.version > row.version:
        return Entry(
            id=row.id,
            name=row.filename,
            folder_id=row.folder_id,
            key=own.file_path,
            size=own.size,
            sha256=own.sha256,
            mime_type=None,
            modified=own.uploaded_at,
            bytes_id=own.id,
            ready=False,
            uploaded_by=row.uploaded_by,
        )
    ready = row.status == FileStatus.READY
    if not ready and not (row.status in UNJUDGED and row.uploaded_by == user.id):
        return None
    return Entry(
        id=row.id,
        name=row.filename,
        folder_id=row.folder_id,
        key=row.file_path,
        size=row.size,
        sha256=row.sha256,
        mime_type=row.mime_type if ready else None,
        modified=row.uploaded_at,
        bytes_id=row.id,
        ready=ready,
        uploaded_by=row.uploaded_by,
    )


def files_in(user: User, place: str | None) -> Iterator[Entry]:
    """The files directly in a place that `user` sees, by name: read through the listing's
    pages, a page of files per query."""
    organization_id = user.organization_id
    cursor: str | None = None
    while True:
        page = listing.list_files(
            organization_id,
            status=None,
            limit=PAGE,
            cursor=cursor,
            folder_id=place or "root",
            sort=listing.Sort.NAME,
            order=listing.Order.ASC,
        )
        rows = [row for row, _email in page.rows]
        own = _own_versions(user, [row.id for row in rows])
        for row in rows:
            entry = _entry(user, row, own.get(row.id))
            if entry is not None:
                yield entry
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def entries_in(user: User, place: str | None) -> list[Entry]:
    """Every file directly in a place that `user` sees, by name, in one query of columns
    (no ORM objects) plus one of `user`'s own versions being validated there: what a
    WebDAV listing of a folder of thousands of files is built from."""
    organization_id = user.organization_id
    here = File.folder_id.is_(None) if place is None else File.folder_id == place
    rows = [
        FileRow._make(row)
        for row in db.session.execute(
            select(*ENTRY_COLUMNS)
            .where(in_organization(File, organization_id), live(File), here)
            .order_by(File.name_key, File.id)
        )
    ]
    own_rows = db.session.scalars(
        select(FileVersion)
        .join(File, File.id == FileVersion.file_id)
        .where(
            in_organization(FileVersion, organization_id),
            in_organization(File, organization_id),
            live(File),
            here,
            FileVersion.uploaded_by == user.id,
            FileVersion.status.in_(UNJUDGED),
        )
        .order_by(FileVersion.version)
    )
    own = {version.file_id: version for version in own_rows}
    entries = (_entry(user, row, own.get(row.id)) for row in rows)
    return [entry for entry in entries if entry is not None]


def folders_in(organization_id: int, place: str | None) -> list[Folder]:
    """The folders directly in a place (not in the trash), by name."""
    query = scoped(Folder, organization_id).where(
        Folder.parent_id.is_(None) if place is None else Folder.parent_id == place
    )
    return list(db.session.scalars(query.order_by(Folder.name_key, Folder.id)))


@dataclass(frozen=True)
class Usage:
    """The organization's storage: bytes used and bytes still free under its quota."""

    used: int
    available: int


def usage(organization_id: int) -> Usage:
    """What the organization holds and how much more fits (held uploads count as used)."""
    row = db.session.execute(
        select(
            Organization.used_bytes, Organization.reserved_bytes, Organization.storage_quota_mb
        ).where(Organization.id == organization_id)
    ).one()
    used = int(row.used_bytes) + int(row.reserved_bytes)
    return Usage(used=used, available=max(0, int(row.storage_quota_mb) * MiB - used))
