"""The one scoping helper: every query for tenant data is keyed on an organization."""

from __future__ import annotations

from typing import Any, TypeVar

from flask_login import current_user
from sqlalchemy import Select, select

from .errors import APIError
from .extensions import db

T = TypeVar("T")


def current_organization_id() -> int:
    """The organization of the authenticated caller."""
    return int(current_user.organization_id)


def scoped(model: type[T], organization_id: int | None = None) -> Select[T]:
    """SELECT model rows of one organization (the caller's unless one is named)."""
    org_id = current_organization_id() if organization_id is None else organization_id
    return select(model).where(model.organization_id == org_id)  # type: ignore[attr-defined]


def get_scoped_or_404(
    model: type[T],
    object_id: Any,
    organization_id: int | None = None,
    what: str = "object",
    for_update: bool = False,
) -> T:
    """One row of the organization by id; another tenant's row is simply not found.

    `for_update` locks the row (PostgreSQL) for a read-then-write unit.
    """
    query = scoped(model, organization_id).where(model.id == object_id)  # type: ignore[attr-defined]
    if for_update:
        query = query.with_for_update()
    row = db.session.scalars(query).first()
    if row is None:
        raise APIError(404, "not_found", f"{what} not found")
    return row
