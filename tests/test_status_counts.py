"""Files per status: the counters migration 0008 adds are right for existing rows and are
kept by the database for rows written by any path, on SQLite and PostgreSQL."""

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
COUNTERS = "SELECT files_pending, files_processing, files_ready, files_failed FROM organizations"


@pytest.fixture
def database_before_counts(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before the status counters."""
    with migrated_to(tmp_path, "coffer_counts", BEFORE_STATUS_COUNTS, redis_server.url) as made:
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


def insert_file(status: str, organization_id: int = 1) -> str:
    """An INSERT of one file row of this status."""
    return (
        "INSERT INTO files (id, filename, file_path, size, status, bytes_stored, "
        f"organization_id, uploaded_at) VALUES ('{uuid.uuid4()}', 'f.txt', 'p', 1, "
        f"'{status}', true, {organization_id}, CURRENT_TIMESTAMP)"
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
