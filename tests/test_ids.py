"""Ids of deleted rows are never given to new ones, on SQLite as on PostgreSQL; migration
0009 makes it so for a SQLite database that already holds data, and keeps all of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from app.extensions import db as _db
from tests.support.client import Auth
from tests.support.database import migrated_to
from tests.support.processes import RedisServer

BEFORE_AUTOINCREMENT = "0008_file_status_counts"
AUTOINCREMENT = "0009_sqlite_autoincrement"


def test_a_revoked_tokens_id_is_never_given_again(app: Flask, auth: Auth) -> None:
    auth.register()
    ids = []
    for name in ("first", "second"):
        created = auth.client.post("/api/tokens", json={"name": name}, headers=auth.headers())
        assert created.status_code == 201
        ids.append(created.get_json()["id"])
        revoked = auth.client.delete(f"/api/tokens/{ids[-1]}", headers=auth.headers())
        assert revoked.status_code == 204
    assert ids[1] > ids[0]
    # The old id names nothing, not the new token.
    assert auth.client.delete(f"/api/tokens/{ids[0]}", headers=auth.headers()).status_code == 404


def test_a_revoked_links_id_is_never_given_again(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    uploaded = auth.upload("notes.txt", b"hello\n")
    assert uploaded.status_code == 201
    worker()
    file_id = uploaded.get_json()["file_id"]
    ids = []
    for _ in range(2):
        made = auth.client.post(f"/api/files/{file_id}/links", json={}, headers=auth.headers())
        assert made.status_code == 201, made.get_json()
        ids.append(made.get_json()["id"])
        revoked = auth.client.delete(f"/api/links/{ids[-1]}", headers=auth.headers())
        assert revoked.status_code == 204
    assert ids[1] > ids[0]


@pytest.fixture
def database_before_autoincrement(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before AUTOINCREMENT."""
    with migrated_to(tmp_path, "coffer_ids", BEFORE_AUTOINCREMENT, redis_server.url) as made:
        yield made


def run(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run SQL straight on the database (foreign keys on, as Coffer runs SQLite); the rows
    of the last statement."""
    engine = create_engine(url)
    rows: list[tuple[Any, ...]] = []
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        for statement in statements:
            result = connection.execute(text(statement))
            rows = [tuple(row) for row in result] if result.returns_rows else []
    engine.dispose()
    return rows


FILE_ID = str(uuid.uuid4())
ROWS = (
    "INSERT INTO organizations (name, name_key, storage_quota_mb, created_at) VALUES "
    "('Acme', 'acme', 10, CURRENT_TIMESTAMP), ('Other', 'other', 10, CURRENT_TIMESTAMP)",
    "INSERT INTO users (email, password_hash, organization_id, role, is_active, created_at) "
    "VALUES ('a@acme.test', 'x', 1, 'admin', true, CURRENT_TIMESTAMP), "
    "('b@other.test', 'x', 2, 'admin', true, CURRENT_TIMESTAMP)",
    "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES "
    "(1, 'kept', 'hash-kept', CURRENT_TIMESTAMP), (1, 'gone', 'hash-gone', CURRENT_TIMESTAMP)",
    "INSERT INTO invites (organization_id, code_hash, created_by, created_at, expires_at) "
    "VALUES (1, 'code', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO files (id, filename, file_path, size, status, bytes_stored, organization_id, "
    f"uploaded_by, uploaded_at) VALUES ('{FILE_ID}', 'f.txt', 'p', 1, 'ready', true, 1, 1, "
    "CURRENT_TIMESTAMP)",
    "INSERT INTO share_links (organization_id, file_id, created_by, secret_hash, created_at, "
    f"expires_at) VALUES (1, '{FILE_ID}', 1, 'secret', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO webhooks (organization_id, url, events, secret, created_by, created_at) "
    "VALUES (1, 'https://a.test/', 'file.ready', 's1', 1, CURRENT_TIMESTAMP), "
    "(1, 'https://b.test/', 'file.ready', 's2', 1, CURRENT_TIMESTAMP)",
    "INSERT INTO webhook_deliveries (webhook_id, organization_id, event_id, event_type, "
    "attempt, outcome, delivered_at) VALUES (1, 1, 'e', 'file.ready', 1, 'succeeded', "
    "CURRENT_TIMESTAMP)",
)
CONTENTS = {
    "organizations": "SELECT id, name, name_key, files_ready FROM organizations ORDER BY id",
    "users": "SELECT id, email, organization_id FROM users ORDER BY id",
    "api_tokens": "SELECT id, user_id, name FROM api_tokens ORDER BY id",
    "invites": "SELECT id, organization_id, created_by FROM invites ORDER BY id",
    "files": "SELECT id, organization_id, uploaded_by FROM files ORDER BY id",
    "share_links": "SELECT id, file_id, created_by FROM share_links ORDER BY id",
    "webhooks": "SELECT id, url, created_by FROM webhooks ORDER BY id",
    "webhook_deliveries": "SELECT id, webhook_id FROM webhook_deliveries ORDER BY id",
}


def schema(url: str) -> dict[str, Any]:
    """Each table's indexes, unique constraints and foreign keys, and the triggers."""
    engine = create_engine(url)
    inspector = inspect(engine)
    found: dict[str, Any] = {}
    for table in CONTENTS:
        found[table] = (
            sorted(
                (i["name"], tuple(i["column_names"]), i["unique"])
                for i in inspector.get_indexes(table)
            ),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                for f in inspector.get_foreign_keys(table)
            ),
        )
    engine.dispose()
    if url.startswith("sqlite"):
        found["triggers"] = run(
            url, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        )
    return found


def test_the_migration_keeps_every_row_index_and_trigger_and_ids_are_never_reused_after(
    database_before_autoincrement: tuple[Flask, str],
) -> None:
    app, url = database_before_autoincrement
    run(url, *ROWS)
    before = {table: run(url, query) for table, query in CONTENTS.items()}
    shape = schema(url)
    assert before["organizations"][0][3] == 1  # the 0008 trigger counted the ready file

    with app.app_context():
        upgrade(revision=AUTOINCREMENT)
        _db.engine.dispose()

    assert {table: run(url, query) for table, query in CONTENTS.items()} == before
    assert schema(url) == shape
    # The triggers still count, and foreign keys still cascade.
    run(url, ROWS[4].replace(FILE_ID, str(uuid.uuid4())))
    assert run(url, CONTENTS["organizations"])[0][3] == 2
    run(url, "DELETE FROM webhooks WHERE id = 1")
    assert run(url, CONTENTS["webhook_deliveries"]) == []

    # The last rows are deleted and new ones made: each gets an id never seen before.
    for table, values in {
        "api_tokens": "(user_id, name, token_hash, created_at) VALUES "
        "(1, 'new', 'hash-new', CURRENT_TIMESTAMP)",
        "webhooks": "(organization_id, url, events, secret, created_at) VALUES "
        "(1, 'https://c.test/', 'file.ready', 's3', CURRENT_TIMESTAMP)",
        "organizations": "(name, name_key, storage_quota_mb, created_at) VALUES "
        "('Third', 'third', 10, CURRENT_TIMESTAMP)",
    }.items():
        last = run(url, f"SELECT max(id) FROM {table}")[0][0]
        run(url, f"DELETE FROM {table} WHERE id = {last}", f"INSERT INTO {table} {values}")
        assert run(url, f"SELECT max(id) FROM {table}")[0][0] == last + 1, table
