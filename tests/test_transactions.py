"""write_transaction(): a unit of writes is atomic, and one cannot be opened inside another."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.database import NestedWriteTransaction, write_transaction
from app.models import Organization


def test_a_unit_commits_its_writes(db: Any) -> None:
    with write_transaction() as session:
        session.add(Organization(name="Committed", storage_quota_mb=1))
    db.session.remove()
    assert db.session.scalar(select(Organization.name).where(Organization.name == "Committed"))


def test_a_nested_unit_is_refused_and_the_outer_unit_rolls_back(db: Any) -> None:
    """Today's commit-at-start would have ended the outer unit early; now nothing is kept."""
    with pytest.raises(NestedWriteTransaction):
        with write_transaction() as session:
            session.add(Organization(name="Outer", storage_quota_mb=1))
            session.flush()
            with write_transaction():
                pass
    db.session.remove()
    assert db.session.scalar(select(Organization).where(Organization.name == "Outer")) is None


def test_a_unit_may_follow_another(db: Any) -> None:
    with write_transaction() as session:
        session.add(Organization(name="First", storage_quota_mb=1))
    with write_transaction() as session:
        session.add(Organization(name="Second", storage_quota_mb=1))
    db.session.remove()
    names = set(db.session.scalars(select(Organization.name)))
    assert {"First", "Second"} <= names
