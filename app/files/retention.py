"""An organization's rules for keeping things: how long the trash holds an item, how many
versions of a file are kept, and how many bytes each holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..database import write_transaction
from ..extensions import db
from ..models import File, FileVersion, Organization, User
from ..services.tenancy import in_organization
from . import policy
from .listing import trashed_files

# The longest retention an admin may set (ten years) and the most versions kept: beyond
# them a number is a mistake rather than a wish.
MAX_TRASH_RETENTION_DAYS = 3650
MAX_VERSIONS_KEPT = 1000


def trash_retention_days(org: Organization) -> int:
    """Days an item stays in the organization's trash (0: purged at the next sweep)."""
    if org.trash_retention_days is not None:
        return int(org.trash_retention_days)
    return int(current_app.config["TRASH_RETENTION_DAYS"])


def versions_kept(org: Organization) -> int:
    """How many versions of each file the organization keeps (the newest)."""
    if org.versions_kept is not None:
        return int(org.versions_kept)
    return int(current_app.config["VERSIONS_KEPT"])


def purge_at(org: Organization, trashed_at: datetime) -> datetime:
    """When an item trashed at `trashed_at` is purged."""
    return trashed_at + timedelta(days=trash_retention_days(org))


@dataclass(frozen=True)
class Held:
    """Bytes of the organization's usage that are not its current files'."""

    # The files in the trash, every version of each.
    trash_bytes: int
    # The versions of files not in the trash other than the ones they answer with (older
    # ones, and new ones still being validated).
    versions_bytes: int


def held(organization_id: int) -> Held:
    """How much of the organization's `used_bytes` is in the trash and in other versions.

    Summed from the rows (the trash and the versions of one organization are small beside
    its files; both sums use their indexes).
    """
    trashed_files = db.session.scalar(
        select(func.coalesce(func.sum(File.size), 0)).where(
            in_organization(File, organization_id),
            File.trashed_at.is_not(None),
            File.bytes_stored.is_(True),
        )
    )
    versions = (
        select(File.trashed_at.is_not(None).label("trashed"), FileVersion.size)
        .join(File, File.id == FileVersion.file_id)
        .where(in_organization(FileVersion, organization_id), FileVersion.bytes_stored.is_(True))
        .subquery()
    )
    trashed_versions, live_versions = db.session.execute(
        select(
            func.coalesce(func.sum(versions.c.size).filter(versions.c.trashed), 0),
            func.coalesce(func.sum(versions.c.size).filter(~versions.c.trashed), 0),
        )
    ).one()
    return Held(int(trashed_files or 0) + int(trashed_versions), int(live_versions))


def details(org: Organization) -> dict[str, object]:
    """The organization as GET /api/org shows it: its usage and its retention settings."""
    kept = held(org.id)
    return {
        "id": org.id,
        "name": org.name,
        "storage_quota_mb": org.storage_quota_mb,
        "used_bytes": org.used_bytes,
        "reserved_bytes": org.reserved_bytes,
        # The counter holds the trash's files too; the organization's files are the others.
        "file_count": org.file_count - trashed_files(org.id),
        "trash_bytes": kept.trash_bytes,
        "versions_bytes": kept.versions_bytes,
        "trash_retention_days": trash_retention_days(org),
        "versions_kept": versions_kept(org),
        "created_at": org.created_at,
    }


def update_settings(
    user: User, *, trash_retention_days: int | None = None, versions_kept: int | None = None
) -> Organization:
    """Set the organization's trash retention and versions kept (admin); None keeps one."""
    policy.require_admin(user)
    with write_transaction():
        org = db.session.get(Organization, user.organization_id, with_for_update=True)
        assert org is not None  # the user's own organization
        if trash_retention_days is not None:
            org.trash_retention_days = trash_retention_days
        if versions_kept is not None:
            org.versions_kept = versions_kept
    return org
