"""The organization's usage: the quota rule, reserving and releasing bytes, the counters.

Every change to `used_bytes`, `reserved_bytes` and `file_count` goes through here; the
per-status counters are kept by the database (migration 0008).
"""

from __future__ import annotations

from typing import Any, overload

from sqlalchemy import ColumnElement, SQLColumnExpression, bindparam, select, update

from .. import units
from ..config import MiB
from ..extensions import db
from ..models import FileStatus, Organization
from ..services.errors import QuotaExceeded

# Each status's row count on the organization (kept by the database).
STATUS_COUNTERS = {
    FileStatus.PENDING: Organization.files_pending,
    FileStatus.PROCESSING: Organization.files_processing,
    FileStatus.READY: Organization.files_ready,
    FileStatus.FAILED: Organization.files_failed,
}
# Why validation fails a file whose organization's quota was lowered below its usage.
OVER_QUOTA_MESSAGE = "the organization is over its storage quota"


# ---- quota ---------------------------------------------------------------------------


@overload
def fits_quota(used_bytes: int, reserved_bytes: int, storage_quota_mb: int) -> bool: ...
@overload
def fits_quota(
    used_bytes: SQLColumnExpression[int],
    reserved_bytes: SQLColumnExpression[int],
    storage_quota_mb: SQLColumnExpression[int],
) -> ColumnElement[bool]: ...
def fits_quota(used_bytes: Any, reserved_bytes: Any, storage_quota_mb: Any) -> Any:
    """The quota rule: the stored bytes and those held by unfinished resumable uploads
    together fit while they are at most the quota (set in MiB).

    On numbers it answers; on columns it is the same rule as a SQL condition.
    """
    return used_bytes + reserved_bytes <= storage_quota_mb * MiB


# Built once: the upload path runs it while holding the database's write lock.
_RESERVE = (
    update(Organization)
    .where(
        Organization.id == bindparam("reserve_org"),
        fits_quota(
            Organization.used_bytes + bindparam("reserve_size"),
            Organization.reserved_bytes,
            Organization.storage_quota_mb,
        ),
    )
    .values(
        used_bytes=Organization.used_bytes + bindparam("reserve_size"),
        file_count=Organization.file_count + 1,
    )
    .execution_options(synchronize_session=False)
)


def reserve_quota(organization_id: int, size: int) -> None:
    """Add a file's bytes to the organization's usage, or QuotaExceeded when they do not fit.

    One conditional UPDATE, so concurrent uploads can never together pass the quota.
    """
    result = db.session.execute(_RESERVE, {"reserve_org": organization_id, "reserve_size": size})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise quota_exceeded(organization_id, size)


def quota_exceeded(organization_id: int, size: int) -> QuotaExceeded:
    """The refusal of `size` more bytes: the organization's usage in binary units, and what to
    do about it."""
    org = db.session.get(Organization, organization_id, populate_existing=True)
    quota = org.storage_quota_mb * MiB if org else 0
    used = org.used_bytes if org else 0
    reserved = org.reserved_bytes if org else 0
    held = f"{units.size(used)} of {units.size(quota)} used" + (
        f", {units.size(reserved)} held by unfinished uploads" if reserved else ""
    )
    return QuotaExceeded(
        "quota_exceeded",
        f"this file ({units.size(size)}) does not fit in the organization's storage quota "
        f"({held}); delete files or ask an admin to raise the quota",
    )


def release_quota(organization_id: int, size: int, files: int) -> None:
    """Take bytes (and files) off the organization's usage."""
    db.session.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(
            used_bytes=Organization.used_bytes - size,
            file_count=Organization.file_count - files,
        )
    )


def within_quota(organization_id: int) -> bool:
    """Whether the organization's stored and held bytes are within its quota."""
    usage = db.session.execute(
        select(
            Organization.used_bytes, Organization.reserved_bytes, Organization.storage_quota_mb
        ).where(Organization.id == organization_id)
    ).first()
    return usage is not None and fits_quota(
        usage.used_bytes, usage.reserved_bytes, usage.storage_quota_mb
    )
