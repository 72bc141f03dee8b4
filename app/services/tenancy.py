"""The one scoping helper: every query for tenant data is keyed on an organization."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, select, text

from ..extensions import db
from .errors import NotFound

T = TypeVar("T")


def in_organization(
    model: type[Any], organization_id: int | BindParameter[Any]
) -> ColumnElement[bool]:
    """The condition that keeps a tenant model's rows to one organization.

    `organization_id` may be a bind parameter, for statements built once and run often.
    """
    condition: ColumnElement[bool] = model.organization_id == organization_id
    return condition


def live(model: type[Any]) -> ColumnElement[bool]:
    """The condition that leaves out a trashable model's rows in the trash."""
    condition: ColumnElement[bool] = model.trashed_at.is_(None)
    return condition


def scoped(model: type[T], organization_id: int, *, include_trashed: bool = False) -> Select[T]:
    """SELECT model rows of one organization; rows in the trash only when asked for
    (`include_trashed`): to everything else a trashed file or folder does not exist."""
    query = select(model).where(in_organization(model, organization_id))
    if not include_trashed and hasattr(model, "trashed_at"):
        query = query.where(live(model))
    return query


def get_scoped_or_404(
    model: type[T],
    object_id: Any,
    organization_id: int,
    what: str = "object",
    for_update: bool = False,
    include_trashed: bool = False,
) -> T:
    """One row of the organization by id; another tenant's row, or one in the trash (unless
    `include_trashed`), is simply not found.

    `for_update` locks the row (PostgreSQL) for a read-then-write unit.
    """
    query = scoped(model, organization_id, include_trashed=include_trashed).where(
        model.id == object_id  # type: ignore[attr-defined]
    )
    if for_update:
        query = query.with_for_update()
    row = db.session.scalars(query).first()
    if row is None:
        raise NotFound("not_found", f"{what} not found")
    return row


def lock_organization(organization_id: int) -> None:
    """Hold the organization still until the transaction ends: on PostgreSQL its row is
    locked (every upload's counting trigger takes that lock anyway); SQLite's writers
    already take turns.

    FOR NO KEY UPDATE, the lock the counters' UPDATE takes too: it keeps the holders of this
    lock and the counting writers in turn, yet lets the foreign key checks of rows that name
    the organization (an activity event, a file) go by, which FOR UPDATE would hold up: a
    writer that holds a file's row and records an event would otherwise wait on a holder of
    this lock that waits on the file's row.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            text("SELECT id FROM organizations WHERE id = :id FOR NO KEY UPDATE"),
            {"id": organization_id},
        )
