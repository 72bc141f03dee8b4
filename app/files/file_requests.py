"""Upload-only links (file requests): a secret URL where anyone drops files into one
folder, within the link's expiry and `max_files`, the organization's quota and the size
limit, and sees only the files they sent, never the folder's others."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from flask import current_app
from sqlalchemy import ColumnElement, delete, or_, select, update

from ..database import write_transaction
from ..extensions import db
from ..models import File, FileRequest, Folder, ResumableUpload, User, utcnow
from ..security import digest, new_secret
from ..services import activity
from ..services.errors import NotAllowed, NotFound
from ..services.tenancy import get_scoped_or_404, in_organization, scoped
from . import folders, policy, resumable
from .intake import Accepted, Receiving, arrive, settle
from .names import OnConflict

MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 90 * 24 * 3600
DEFAULT_EXPIRES_IN = 7 * 24 * 3600
MAX_FILES = 10_000
MAX_MESSAGE_LENGTH = 1000
# As share links: a secret much longer than ours is refused before it is hashed.
MAX_SECRET_LENGTH = 100
# One answer for every link that cannot be used, whatever the reason, so a visitor learns
# nothing about links that exist but are spent.
GONE = "upload link not found, expired, used up or revoked"


@dataclass(frozen=True)
class IssuedRequest:
    """A new upload-only link with its secret, which is shown this once."""

    request: FileRequest
    secret: str


def place_name(organization_id: int, folder_id: str | None) -> str:
    """A folder's path as the creator sees it (`/A/B`), `/` for the top level."""
    if folder_id is None:
        return "/"
    crumbs = folders.breadcrumbs(organization_id, folder_id)
    return "/" + "/".join(crumb.name for crumb in crumbs)


def create_request(
    user: User,
    raw_folder_id: str,
    *,
    expires_in: int = DEFAULT_EXPIRES_IN,
    max_files: int | None = None,
    message: str | None = None,
) -> IssuedRequest:
    """An upload-only link into a folder of the organization (`root`: the top level); any
    member may make one, since any member may upload there."""
    secret = new_secret()
    now = utcnow()
    with write_transaction() as session:
        folder_id = folders.check_place(user.organization_id, raw_folder_id)
        if not policy.may_request_files(user):
            raise NotAllowed("forbidden", "you may not ask for files here")
        row = FileRequest(
            organization_id=user.organization_id,
            folder_id=folder_id,
            created_by=user.id,
            secret_hash=digest(secret),
            message=(message or "").strip() or None,
            expires_at=now + timedelta(seconds=expires_in),
            max_files=max_files,
            files_received=0,
            created_at=now,
        )
        session.add(row)
        session.flush()  # its id, for the record
        activity.record(
            "request.created",
            user.organization_id,
            activity.acting(user),
            activity.Target("request", str(row.id), place_name(user.organization_id, folder_id)),
        )
    return IssuedRequest(request=row, secret=secret)


def request_url(secret: str, request_base: str) -> str:
    """A link's absolute URL: under PUBLIC_URL, else under the request's scheme and host."""
    base = current_app.config["PUBLIC_URL"] or request_base.rstrip("/")
    return f"{base}/r/{secret}"


@dataclass(frozen=True)
class Listed:
    """An upload-only link as listed: never its secret."""

    id: int
    folder_id: str | None
    path: str
    created_by_email: str | None
    created_by: int | None
    message: str | None
    created_at: datetime
    expires_at: datetime
    max_files: int | None
    files_received: int
    usable: bool


def usable_now(now: datetime) -> list[ColumnElement[bool]]:
    """The conditions that keep a link usable at `now`: not expired, not used up."""
    return [
        FileRequest.expires_at > now,
        or_(FileRequest.max_files.is_(None), FileRequest.files_received < FileRequest.max_files),
    ]


def list_requests(user: User) -> list[Listed]:
    """The organization's upload-only links for an admin, a member's own for a member;
    newest first, the spent ones too (until revoked)."""
    query = (
        select(FileRequest, User.email)
        .outerjoin(User, User.id == FileRequest.created_by)
        .where(in_organization(FileRequest, user.organization_id))
        .order_by(FileRequest.id.desc())
    )
    if not policy.sees_every_request(user):
        query = query.where(FileRequest.created_by == user.id)
    now = utcnow()
    listed = []
    for row, email in db.session.execute(query).all():
        listed.append(
            Listed(
                id=row.id,
                folder_id=row.folder_id,
                path=place_name(user.organization_id, row.folder_id),
                created_by_email=email,
                created_by=row.created_by,
                message=row.message,
                created_at=row.created_at,
                expires_at=row.expires_at,
                max_files=row.max_files,
                files_received=row.files_received,
                usable=row.expires_at > now
                and (row.max_files is None or row.files_received < row.max_files),
            )
        )
    db.session.rollback()
    return listed


def revoke_request(user: User, request_id: int) -> None:
    """Delete a link at once (its creator or an admin; 403 for others): it takes no more
    files; those it brought stay."""
    with write_transaction() as session:
        row = get_scoped_or_404(FileRequest, request_id, user.organization_id, what="upload link")
        if not policy.may_revoke_request(user, row.created_by):
            raise NotAllowed("forbidden", "only the link's creator or an admin can revoke it")
        path = place_name(user.organization_id, row.folder_id)
        session.execute(
            delete(FileRequest).where(
                in_organization(FileRequest, user.organization_id), FileRequest.id == row.id
            )
        )
        activity.record(
            "request.revoked",
            user.organization_id,
            activity.acting(user),
            activity.Target("request", str(request_id), path),
        )


# ---- the visitor's side ---------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    """A usable link as its visitor may know it: no folder name, no other file."""

    id: int
    organization_id: int
    folder_id: str | None
    message: str | None
    expires_at: datetime
    files_left: int | None


def resolve(secret: str) -> Open:
    """The usable link a secret opens; NotFound alike for an unknown, expired, used up or
    revoked link and for one whose folder is in the trash."""
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        raise NotFound("not_found", GONE)
    # The secret is the one key here: it names a link of whichever organization made it.
    row = db.session.scalars(
        select(FileRequest).where(FileRequest.secret_hash == digest(secret), *usable_now(utcnow()))
    ).first()
    if row is None:
        raise NotFound("not_found", GONE)
    if row.folder_id is not None and not _folder_live(row.organization_id, row.folder_id):
        raise NotFound("not_found", GONE)
    return Open(
        id=row.id,
        organization_id=row.organization_id,
        folder_id=row.folder_id,
        message=row.message,
        expires_at=row.expires_at,
        files_left=None if row.max_files is None else row.max_files - row.files_received,
    )


def _folder_live(organization_id: int, folder_id: str) -> bool:
    found = db.session.scalar(
        scoped(Folder, organization_id).with_only_columns(Folder.id).where(Folder.id == folder_id)
    )
    return found is not None


def take_file(link: Open) -> None:
    """Count one file against the link, in the caller's write transaction; NotFound when
    it has none left (or lapsed). One conditional UPDATE: two uploads racing for the last
    file cannot both have it."""
    taken = db.session.execute(
        update(FileRequest)
        .where(
            in_organization(FileRequest, link.organization_id),
            FileRequest.id == link.id,
            *usable_now(utcnow()),
        )
        .values(files_received=FileRequest.files_received + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("not_found", GONE)


def accept(link: Open, receiving: Receiving) -> Accepted:
    """Record a file a visitor sent through the link (the multipart form), as intake's
    `accept` does a member's: within the quota and the link's files, all or nothing; its
    name numbered when taken, so nothing about the folder's other names is told."""

    def record() -> Accepted:
        take_file(link)
        if link.folder_id is not None and not _folder_live(link.organization_id, link.folder_id):
            raise NotFound("not_found", GONE)
        return arrive(
            uploader=None,
            new_id=receiving.file_id,
            organization_id=link.organization_id,
            folder_id=link.folder_id,
            filename=receiving.display_name,
            key=receiving.upload.key,
            size=receiving.upload.size,
            on_conflict=OnConflict.RENAME,
            actor=activity.by_request(link.id),
            via_request=link.id,
        )

    return settle(receiving, link.organization_id, record)


def begin_resumable(link: Open, length: int, display: str, metadata: str) -> resumable.Progress:
    """A resumable upload through the link, one of its files taken now."""
    return resumable.create_via_request(
        resumable.ViaRequest(
            request_id=link.id,
            organization_id=link.organization_id,
            folder_id=link.folder_id,
            take_file=lambda: take_file(link),
        ),
        length,
        display,
        metadata,
    )


def resumable_progress(link: Open, raw_id: str) -> resumable.Progress:
    """Where a resumable upload sent through the link stands."""
    return resumable.progress_via_request(link.id, link.organization_id, raw_id)


def append_resumable(
    link: Open, raw_id: str, offset: int, body: IO[bytes], length: int
) -> resumable.Progress:
    """Add a PATCH body to a resumable upload sent through the link."""
    return resumable.append_via_request(link.id, link.organization_id, raw_id, offset, body, length)


@dataclass(frozen=True)
class Sent:
    """One of the visitor's files as they may see it: how far it got, and its verdict."""

    id: str
    status: str
    size: int
    received: int
    error_message: str | None


def sent_files(link: Open, ids: list[str]) -> list[Sent]:
    """The files (or unfinished resumable uploads) of these ids sent through the link, in
    the ids' order; any other id is left out, so a visitor sees only their own."""
    if not ids:
        return []
    files = {
        row.id: row
        for row in db.session.scalars(
            scoped(File, link.organization_id).where(
                File.id.in_(ids), File.uploaded_via_request == link.id
            )
        )
    }
    uploads = {
        row.id: row
        for row in db.session.scalars(
            scoped(ResumableUpload, link.organization_id).where(
                ResumableUpload.id.in_(ids),
                ResumableUpload.uploaded_via_request == link.id,
                ResumableUpload.completed_at.is_(None),
            )
        )
    }
    sent = []
    for raw in ids:
        if (file := files.get(raw)) is not None:
            sent.append(Sent(file.id, file.status, file.size, file.size, file.error_message))
        elif (upload := uploads.get(raw)) is not None:
            sent.append(Sent(upload.id, "uploading", upload.length, upload.offset, None))
    db.session.rollback()
    return sent


def sent_file(link: Open, raw_id: str, ids: list[str]) -> Sent:
    """One of the visitor's files; NotFound for any file they did not send in this browser."""
    if raw_id not in ids:
        raise NotFound("not_found", "file not found")
    found = sent_files(link, [raw_id])
    if not found:
        raise NotFound("not_found", "file not found")
    return found[0]
