"""The trash as a user reaches it (the API), and a large trash seeded by bulk INSERT."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import text

from app.extensions import db
from tests.support.client import Auth


def trash_items(auth: Auth, **query: Any) -> list[dict[str, Any]]:
    """Every item of GET /api/trash the caller sees, following the cursors."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        response = auth.client.get("/api/trash", query_string=params, headers=auth.headers())
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def trash_ids(auth: Auth) -> list[str]:
    """The ids of the trash's items, newest first."""
    return [item["id"] for item in trash_items(auth)]


def delete(auth: Auth, path: str) -> tuple[int, Any]:
    """DELETE a path as this user; (status, JSON body or None)."""
    response = auth.client.delete(path, headers=auth.headers())
    return response.status_code, response.get_json(silent=True)


def restore(auth: Auth, item_id: str) -> tuple[int, Any]:
    """POST /api/trash/<id>/restore; (status, body)."""
    response = auth.client.post(f"/api/trash/{item_id}/restore", headers=auth.headers())
    return response.status_code, response.get_json(silent=True)


def delete_forever(auth: Auth, item_id: str) -> tuple[int, Any]:
    """DELETE /api/trash/<id>; (status, JSON body or None)."""
    return delete(auth, f"/api/trash/{item_id}")


def set_retention(auth: Auth, days: int) -> None:
    """The admin sets the organization's trash retention."""
    response = auth.client.patch(
        "/api/org", json={"trash_retention_days": days}, headers=auth.headers()
    )
    assert response.status_code == 200, response.get_json()


# ---- a large trash -------------------------------------------------------------------------

SEED_COLUMNS = (
    "id, filename, name_key, file_path, size, mime_type, status, bytes_stored, "
    "organization_id, uploaded_by, uploaded_at, processed_at, folder_id, "
    "trashed_at, trashed_by, trash_root, purging"
)
SEED_SQLITE = f"""
INSERT INTO files ({SEED_COLUMNS})
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :count - 1),
seeded AS (SELECT i, printf('%08x-0000-4000-8000-%012x', i, i) AS id FROM seq)
SELECT id, printf('seed-%07d.txt', i), printf('seed-%07d.txt', i),
    :org || '/' || id || '/seed.txt', 10, 'text/plain', 'ready', 1, :org, :user,
    :at, :at, NULL, :at, :user, id, 0
FROM seeded
"""
SEED_POSTGRESQL = f"""
INSERT INTO files ({SEED_COLUMNS})
SELECT id, 'seed-' || lpad(CAST(i AS text), 7, '0') || '.txt',
    'seed-' || lpad(CAST(i AS text), 7, '0') || '.txt',
    CAST(:org AS text) || '/' || id || '/seed.txt', 10, 'text/plain', 'ready', true, :org,
    :user, :at, :at, NULL, :at, :user, id, false
FROM (
    SELECT i, lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0') AS id
    FROM generate_series(0, :count - 1) AS i
) AS seeded
"""


def seed_trash(app: Flask, organization_id: int, user_id: int, count: int, at: datetime) -> None:
    """`count` files in the organization's trash, each an item trashed at `at`, in one
    INSERT (their bytes are not stored: a purge's removal of missing bytes is no error)."""
    with app.app_context():
        dialect = db.session.get_bind().dialect.name
        postgresql = dialect == "postgresql"
        # SQLite holds times as the text SQLAlchemy writes them.
        stamp = at if postgresql else at.isoformat(sep=" ", timespec="microseconds")
        db.session.execute(
            text(SEED_POSTGRESQL if postgresql else SEED_SQLITE),
            {"count": count, "org": organization_id, "user": user_id, "at": stamp},
        )
        db.session.commit()
