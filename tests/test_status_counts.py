"""Usage counters: files per status (migration 0008), and with them the quota's
`used_bytes`, `file_count` and `reserved_bytes` (migration 0011), are right for existing
rows and kept by the database for rows written by any path, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from app.extensions import db as _db
from tests.support.database import migrated_to
from tests.support.processes import RedisServer

BEFORE_STATUS_COUNTS = "0007_share_links_webhooks"
BEFORE_USAGE_COUNTERS = "0010_organization_name_skeleton"
COUNTERS = "SELECT files_pending, files_processing, files_ready, files_failed FROM organizations"
USAGE = (
    "SELECT file_count, used_bytes, reserved_bytes, files_pending, files_processing, "
    "files_ready, files_failed FROM organizations ORDER BY id"
)


@pytest.fixture
def database_before_counts(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before the status counters."""
    with migrated_to(tmp_path, "coffer_counts", BEFORE_STATUS_COUNTS, redis_server.url) as made:
        yield made


@pytest.fixture
def database_before_usage_counters(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before the usage counters' triggers."""
    with migrated_to(tmp_path, "coffer_usage", BEFORE_USAGE_COUNTERS, redis_server.url) as made:
        yield made


def run(url: str, *statements: str) -> list[tuple[int, ...]]:
    """Run SQL straight on the database, as an older Coffer or an operator would; returns
    the rows of the last statement when it has any."""
    engine = create_engine(url)
    rows: list[tuple[int, ...]] = []
    with engine.begin() as connection:
        for statement in statements:
            result = connection.execute(text(statement))
            rows = [tuple(row) for row in result] if result.returns_rows else []
    engine.dispose()
    return rows


def insert_file(
    status: str, organization_id: int = 1, size: int = 1, stored: bool = True, file_id: str = ""
) -> str:
    """An INSERT of one file row of this status."""
    return (
        "INSERT INTO files (id, filename, file_path, size, status, bytes_stored, "
        f"organization_id, uploaded_at) VALUES ('{file_id or uuid.uuid4()}', 'f.txt', 'p', "
        f"{size}, '{status}', {str(stored).lower()}, {organization_id}, CURRENT_TIMESTAMP)"
    )


def upload_row(
    length: int, organization_id: int = 1, completed: bool = False, upload_id: str = ""
) -> str:
    """The VALUES of one resumable upload's row (see insert_uploads)."""
    return (
        f"('{upload_id or uuid.uuid4()}', {organization_id}, 'f.txt', '', 'p', {length}, 0, "
        "'{}', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
        f"{'CURRENT_TIMESTAMP' if completed else 'NULL'})"
    )


def insert_uploads(*rows: str) -> str:
    """One INSERT of resumable uploads' rows."""
    return (
        "INSERT INTO resumable_uploads (id, organization_id, filename, upload_metadata, "
        'file_path, length, "offset", storage_state, hash_state, created_at, expires_at, '
        f"completed_at) VALUES {', '.join(rows)}"
    )


def triggers(url: str) -> list[tuple[int, ...]]:
    """Every trigger and trigger function of the database, as the database shows it."""
    if url.startswith("sqlite"):
        return run(url, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    return run(
        url,
        "SELECT tgname, pg_get_triggerdef(t.oid), p.prosrc FROM pg_trigger t "
        "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal ORDER BY tgname",
    )


def test_existing_files_are_counted_and_every_later_change_moves_the_counters(
    database_before_counts: tuple[Flask, str],
) -> None:
    app, url = database_before_counts
    run(
        url,
        "INSERT INTO organizations (name, name_key, storage_quota_mb, used_bytes, file_count, "
        "reserved_bytes, created_at) VALUES ('Acme', 'acme', 10, 0, 0, 0, CURRENT_TIMESTAMP), "
        "('Other', 'other', 10, 0, 0, 0, CURRENT_TIMESTAMP)",
        *(insert_file(status) for status in ("ready", "ready", "ready", "failed", "pending")),
        insert_file("ready", organization_id=2),
    )
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    assert run(url, COUNTERS + " ORDER BY id") == [(1, 0, 3, 1), (0, 0, 1, 0)]

    # One statement moving several rows, one adding several, one removing several.
    run(url, "UPDATE files SET status = 'processing' WHERE status = 'pending'")
    run(url, "UPDATE files SET status = 'failed' WHERE status = 'ready' AND organization_id = 1")
    assert run(url, COUNTERS + " ORDER BY id") == [(0, 1, 0, 4), (0, 0, 1, 0)]
    run(url, "UPDATE files SET mime_type = 'text/plain'")  # no status moved: nothing counts
    run(
        url,
        f"{insert_file('pending')}, ('{uuid.uuid4()}', 'g', 'q', 1, 'pending', true, 1, "
        "CURRENT_TIMESTAMP)",
    )
    run(url, "DELETE FROM files WHERE status = 'failed'")
    assert run(url, COUNTERS + " ORDER BY id") == [(2, 1, 0, 0), (0, 0, 1, 0)]

    # The migration goes down and up again, counting afresh.
    with app.app_context():
        downgrade(revision=BEFORE_STATUS_COUNTS)
        _db.engine.dispose()
    run(url, insert_file("ready"))
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    assert run(url, COUNTERS + " ORDER BY id") == [(2, 1, 1, 0), (0, 0, 1, 0)]


def test_usage_is_counted_afresh_and_every_later_change_moves_the_counters(
    database_before_usage_counters: tuple[Flask, str],
) -> None:
    app, url = database_before_usage_counters
    status_triggers = triggers(url)
    kept, gone, upload = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    # Counters that drifted from the rows: the migration counts them afresh.
    run(
        url,
        "INSERT INTO organizations (name, name_key, storage_quota_mb, used_bytes, file_count, "
        "reserved_bytes, created_at) VALUES ('Acme', 'acme', 10, 999, 9, 99, CURRENT_TIMESTAMP), "
        "('Other', 'other', 10, 0, 0, 0, CURRENT_TIMESTAMP)",
        insert_file("ready", size=100, file_id=kept),
        insert_file("failed", size=20, stored=False),
        insert_file("pending", size=3, file_id=gone),
        insert_file("ready", organization_id=2, size=7),
        insert_uploads(
            upload_row(50, upload_id=upload),
            upload_row(5, completed=True),
            upload_row(11, organization_id=2),
        ),
    )
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    assert run(url, USAGE) == [(3, 103, 50, 1, 0, 1, 1), (1, 7, 11, 0, 0, 1, 0)]

    # Files: one statement adding several, a size changed, bytes dropped, a status moved, and
    # one statement removing several.
    run(
        url,
        f"{insert_file('pending', size=1000)}, ('{uuid.uuid4()}', 'g', 'q', 2000, 'pending', "
        "false, 1, CURRENT_TIMESTAMP)",
    )
    assert run(url, USAGE)[0] == (5, 1103, 50, 3, 0, 1, 1)
    run(url, f"UPDATE files SET size = 130 WHERE id = '{kept}'")
    run(url, f"UPDATE files SET bytes_stored = false, status = 'failed' WHERE id = '{gone}'")
    run(url, "UPDATE files SET mime_type = 'text/plain'")  # nothing counted changed
    assert run(url, USAGE)[0] == (5, 1130, 50, 2, 0, 1, 2)
    run(url, "UPDATE files SET bytes_stored = true WHERE size = 2000")
    run(url, "DELETE FROM files WHERE status = 'failed' OR size = 1000")
    assert run(url, USAGE) == [(2, 2130, 50, 1, 0, 1, 0), (1, 7, 11, 0, 0, 1, 0)]

    # Resumable uploads: several created at once (a completed one holds nothing), one grown,
    # one completed, an unfinished one and a completed one removed.
    run(url, insert_uploads(upload_row(30), upload_row(40, completed=True), upload_row(1, 2)))
    assert [row[2] for row in run(url, USAGE)] == [80, 12]
    run(url, f"UPDATE resumable_uploads SET length = 60 WHERE id = '{upload}'")
    run(url, 'UPDATE resumable_uploads SET "offset" = 1, lock_token = NULL')  # no holding moved
    assert [row[2] for row in run(url, USAGE)] == [90, 12]
    run(url, f"UPDATE resumable_uploads SET completed_at = CURRENT_TIMESTAMP WHERE id = '{upload}'")
    assert [row[2] for row in run(url, USAGE)] == [30, 12]
    run(url, "DELETE FROM resumable_uploads WHERE organization_id = 1")
    run(url, "DELETE FROM resumable_uploads WHERE length = 11")
    assert run(url, USAGE) == [(2, 2130, 0, 1, 0, 1, 0), (1, 7, 1, 0, 0, 1, 0)]

    # Down: 0008's triggers exactly as they were, counting statuses only; up again: every
    # counter counted afresh.
    with app.app_context():
        downgrade(revision=BEFORE_USAGE_COUNTERS)
        _db.engine.dispose()
    assert triggers(url) == status_triggers
    run(url, insert_file("ready", size=5), insert_uploads(upload_row(8)))
    assert run(url, USAGE)[0] == (2, 2130, 0, 1, 0, 2, 0)
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    assert run(url, USAGE) == [(3, 2135, 8, 1, 0, 2, 0), (1, 7, 1, 0, 0, 1, 0)]
