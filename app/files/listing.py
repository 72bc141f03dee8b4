"""Listing an organization's files: pages, cursors and filters."""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_

from ..extensions import db
from ..models import File, FileStatus, Organization, User
from ..services.errors import InvalidInput
from ..services.tenancy import scoped
from .ledger import STATUS_COUNTERS


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    rows: list[tuple[File, str | None]]
    total: int
    next_cursor: str | None
    # Set when newer rows exist before this page (a page reached by cursor).
    prev_cursor: str | None = None


def encode_cursor(row: File) -> str:
    """An opaque cursor pointing just after this row in newest-first order."""
    raw = f"{row.uploaded_at.isoformat(timespec='microseconds')}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (uploaded_at, id) a cursor points after; InvalidInput when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, file_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(stamp), str(uuid.UUID(file_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid_parameter", "cursor is not valid", field="cursor") from None


def list_files(
    organization_id: int,
    *,
    status: FileStatus | None,
    limit: int,
    page: int = 1,
    cursor: str | None = None,
    newer: bool = False,
) -> Page:
    """The organization's files newest first (ties by id), by page number or cursor.

    With `newer`, the page is the one just before the cursor (the rows newer than it).
    """
    query = scoped(File, organization_id)
    if status is not None:
        query = query.where(File.status == status)
    if status is None:
        # The kept counter: no COUNT over the table per request.
        total = db.session.scalar(
            select(Organization.file_count).where(Organization.id == organization_id)
        )
    else:
        # The database's own counter of the status (no COUNT over the rows either).
        total = db.session.scalar(
            select(STATUS_COUNTERS[status]).where(Organization.id == organization_id)
        )
    newest_first = (File.uploaded_at.desc(), File.id.desc())
    # The page's ids come from the covering index alone; only those rows are then read.
    oldest_first = (File.uploaded_at.asc(), File.id.asc())
    keys = query.with_only_columns(File.id).limit(limit + 1)
    if cursor:
        after_time, after_id = decode_cursor(cursor)
        # A row-value comparison is one index range on SQLite and PostgreSQL alike (an
        # OR of two conditions makes SQLite walk the index from the newest row).
        key, mark = tuple_(File.uploaded_at, File.id), tuple_(after_time, after_id)
        if newer:
            keys = keys.where(key > mark).order_by(*oldest_first)
        else:
            keys = keys.where(key < mark).order_by(*newest_first)
    else:
        keys = keys.order_by(*newest_first)
        keys = keys.offset((page - 1) * limit)
    page_ids = keys.subquery()
    page_query = (
        select(File, User.email)
        .join(page_ids, page_ids.c.id == File.id)
        .outerjoin(User, User.id == File.uploaded_by)
        .order_by(*newest_first)
    )
    rows: list[tuple[File, str | None]] = [
        (f, email) for f, email in db.session.execute(page_query).all()
    ]
    more = len(rows) > limit
    if newer and cursor:
        # The extra row is the newest one: it says a still newer page exists.
        rows = rows[1:] if more else rows
        prev_cursor = encode_cursor(rows[0][0]) if more and rows else None
        next_cursor = encode_cursor(rows[-1][0]) if rows else None
    else:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][0]) if more and rows else None
        prev_cursor = encode_cursor(rows[0][0]) if cursor and rows else None
    return Page(rows=rows, total=int(total or 0), next_cursor=next_cursor, prev_cursor=prev_cursor)


def page_count(total: int, limit: int) -> int:
    """How many pages of `limit` hold `total` rows."""
    return math.ceil(total / limit) if total else 0
