"""The organization's usage: the quota rule and its check, and the counters it reads.

The database keeps every usage counter (`used_bytes`, `file_count`, `reserved_bytes` and
the files per status; migration 0011's triggers): a write adds or removes its rows, then
checks the quota here, in the same transaction. Nothing in Python writes a counter.
"""

from __future__ import annotations

from typing import Any, overload

from sqlalchemy import ColumnElement, SQLColumnExpression, select

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


def check_room(organization_id: int, size: int) -> None:
    """Refuse a write that took the organization past its quota: QuotaExceeded for `size`
    more bytes, with the write's transaction rolled back. Run inside the write transaction,
    after the INSERT whose triggers moved the counters.

    On PostgreSQL the triggers' UPDATE holds the organization's row until the commit, so a
    concurrent upload's check (a later statement) sees these bytes; on SQLite writers take
    turns. So concurrent uploads can never together pass the quota.
    """
    if within_quota(organization_id):
        return
    # Rolled back before the message reads the usage: it tells what the organization holds
    # without the refused bytes. The caller's transaction then rolls back an empty one.
    db.session.rollback()
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
