"""Share links: a secret URL that hands one ready file to anyone, until it expires, is
revoked, or has been downloaded `max_downloads` times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, delete, or_, select, update

from ..database import write_transaction
from ..extensions import db
from ..files import access, folders, policy
from ..models import File, FileStatus, ShareLink, User, utcnow
from ..security import digest, new_secret
from . import activity
from .errors import NotAllowed, NotFound
from .tenancy import get_scoped_or_404, in_organization, scoped

MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 30 * 24 * 3600
DEFAULT_EXPIRES_IN = 7 * 24 * 3600
# A secret from new_secret() is 43 characters; anything much longer is no secret of ours,
# and is refused before it is hashed.
MAX_SECRET_LENGTH = 100
# One answer for every link that cannot be used, whatever the reason, so a caller learns
# nothing about links that exist but are spent.
GONE = "share link not found, expired or revoked"


@dataclass(frozen=True)
class IssuedLink:
    """A new link with its secret, which is shown this once."""

    link: ShareLink
    secret: str
    # The file's path (`/A/B/name`) as the link is made.
    path: str


def create_link(
    user: User, raw_file_id: str, expires_in: int, max_downloads: int | None
) -> IssuedLink:
    """A link to one of the organization's ready files; Conflict `not_ready` otherwise."""
    row = access.get_ready_file(user.organization_id, raw_file_id)
    secret = new_secret()
    now = utcnow()
    link = ShareLink(
        organization_id=user.organization_id,
        file_id=row.id,
        created_by=user.id,
        secret_hash=digest(secret),
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in),
        max_downloads=max_downloads,
        downloads=0,
    )
    with write_transaction() as session:
        session.add(link)
        session.flush()  # its id, for the record
        activity.record(
            "link.created",
            user.organization_id,
            activity.acting(user),
            activity.Target("link", str(link.id), row.filename, row.id),
        )
    path = folders.file_path(row.organization_id, row.folder_id, row.filename)
    return IssuedLink(link=link, secret=secret, path=path)


def link_url(secret: str, request_base: str) -> str:
    """A link's absolute URL: under PUBLIC_URL, else under the request's own scheme and host."""
    base = current_app.config["PUBLIC_URL"] or request_base.rstrip("/")
    return f"{base}/s/{secret}"


def live(now: datetime) -> list[ColumnElement[bool]]:
    """The conditions that keep a link usable at `now`: not expired, not used up."""
    return [
        ShareLink.expires_at > now,
        or_(ShareLink.max_downloads.is_(None), ShareLink.downloads < ShareLink.max_downloads),
    ]


@dataclass(frozen=True)
class FileLinks:
    """A file's usable links, and the file's path now."""

    path: str
    links: list[ShareLink]


def list_links(organization_id: int, raw_file_id: str) -> FileLinks:
    """A file's usable links, oldest first; NotFound for a file of no such organization."""
    row = access.get_file(organization_id, raw_file_id)
    path = folders.file_path(organization_id, row.folder_id, row.filename)
    return FileLinks(path=path, links=links_of(row))


def links_of(row: File) -> list[ShareLink]:
    """The usable links of a file already read through the tenancy scope, oldest first."""
    return list(
        db.session.scalars(
            scoped(ShareLink, row.organization_id)
            .where(ShareLink.file_id == row.id, *live(utcnow()))
            .order_by(ShareLink.id)
        )
    )


def revoke_link(user: User, link_id: int) -> None:
    """Delete a link: its creator, the file's uploader or an admin may; others get 403."""
    with write_transaction() as session:
        link = get_scoped_or_404(ShareLink, link_id, user.organization_id, what="share link")
        file = session.execute(
            scoped(File, user.organization_id, include_trashed=True)
            .with_only_columns(File.uploaded_by, File.filename)
            .where(File.id == link.file_id)
        ).first()
        uploader = file.uploaded_by if file is not None else None
        if not policy.may_revoke_link(user, link, uploader):
            raise NotAllowed(
                "forbidden",
                "only the link's creator, the file's uploader or an admin can revoke it",
            )
        session.execute(
            delete(ShareLink).where(
                in_organization(ShareLink, user.organization_id), ShareLink.id == link.id
            )
        )
        activity.record(
            "link.revoked",
            user.organization_id,
            activity.acting(user),
            activity.Target("link", str(link.id), file.filename if file else None, link.file_id),
        )


@dataclass(frozen=True)
class Shared:
    """A usable link and the ready file it hands out."""

    link_id: int
    file: File


def resolve(secret: str) -> Shared:
    """The file a secret gives, or NotFound alike for an unknown, expired, used up or
    revoked link and for a file that is gone or not ready."""
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        raise NotFound("not_found", GONE)
    # The secret is the one key here: it names a link of whichever organization made it.
    link = db.session.scalars(
        select(ShareLink).where(ShareLink.secret_hash == digest(secret), *live(utcnow()))
    ).first()
    if link is None:
        raise NotFound("not_found", GONE)
    # The file through the scoping helper, keyed on the link's own organization.
    row = db.session.scalars(
        scoped(File, link.organization_id).where(
            File.id == link.file_id, File.status == FileStatus.READY
        )
    ).first()
    if row is None:
        raise NotFound("not_found", GONE)
    return Shared(link_id=link.id, file=row)


def counts_as_download(status: int) -> bool:
    """Whether an answer to a share link uses one of its downloads.

    Every answer that sends any of the file's bytes does: the whole file (200), a redirect
    to it in the store (302) and any range (206), so a limited link never sends more than
    its limit of answers with bytes. A 304 (the client holds the file) and errors do not.
    """
    return status in (200, 206, 302)


def count_download(shared: Shared) -> None:
    """Use one of the link's downloads, or NotFound when none is left (or it lapsed).

    One conditional UPDATE: two downloads racing for a link's last one cannot both have
    it.
    """
    now = utcnow()
    with write_transaction() as session:
        result = session.execute(
            update(ShareLink)
            .where(
                in_organization(ShareLink, shared.file.organization_id),
                ShareLink.id == shared.link_id,
                *live(now),
            )
            .values(downloads=ShareLink.downloads + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("not_found", GONE)


@dataclass(frozen=True)
class Listed:
    """A usable link as the organization's links page shows it."""

    link: ShareLink
    path: str
    created_by_email: str | None


def organization_links(user: User) -> list[Listed]:
    """The organization's usable share links for an admin, the member's own (made by them
    or to their files) for a member; newest first."""
    query = (
        select(ShareLink, File, User.email)
        .join(File, File.id == ShareLink.file_id)
        .outerjoin(User, User.id == ShareLink.created_by)
        .where(in_organization(ShareLink, user.organization_id), *live(utcnow()))
        .order_by(ShareLink.id.desc())
    )
    if not policy.is_admin(user):
        query = query.where(or_(ShareLink.created_by == user.id, File.uploaded_by == user.id))
    rows = db.session.execute(query).all()
    listed = [
        Listed(link, folders.file_path(file.organization_id, file.folder_id, file.filename), email)
        for link, file, email in rows
    ]
    db.session.rollback()
    return listed
