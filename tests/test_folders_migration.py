"""Migration 0012 puts every existing file at the top level under a name of its own: where
files already shared a name (compared NFKC case-folded), the oldest keeps it and the others
are numbered as `on_conflict=rename` numbers an upload, and the migration says how many."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db as _db
from tests.support.database import migrated_to
from tests.support.processes import RedisServer

BEFORE_FOLDERS = "0011_usage_counters"


@pytest.fixture
def database_before_folders(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Flask, str]]:
    """A scratch database migrated up to the revision before folders."""
    with migrated_to(tmp_path, "coffer_folders", BEFORE_FOLDERS, redis_server.url) as made:
        yield made


def run(url: str, *statements: str) -> list[tuple[object, ...]]:
    """SQL straight on the database, as the previous release wrote it."""
    engine = create_engine(url)
    rows: list[tuple[object, ...]] = []
    try:
        with engine.begin() as connection:
            for statement in statements:
                result = connection.execute(text(statement))
                rows = [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
    return rows


def file_row(file_id: int, name: str, organization_id: int, second: int) -> str:
    """One file's VALUES, uploaded `second` seconds into the day."""
    return (
        f"('00000000-0000-4000-8000-{file_id:012d}', '{name}', 'p{file_id}', 1, 'ready', true, "
        f"{organization_id}, '2026-12-01 00:00:{second:02d}')"
    )


def test_files_sharing_a_name_are_numbered_oldest_first_and_the_migration_says_how_many(
    database_before_folders: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = database_before_folders
    run(
        url,
        "INSERT INTO organizations (name, name_key, storage_quota_mb, used_bytes, file_count, "
        "reserved_bytes, created_at) VALUES ('Acme', 'acme', 10, 0, 0, 0, CURRENT_TIMESTAMP), "
        "('Other', 'other', 10, 0, 0, 0, CURRENT_TIMESTAMP)",
        "INSERT INTO files (id, filename, file_path, size, status, bytes_stored, "
        "organization_id, uploaded_at) VALUES "
        + ", ".join(
            [
                file_row(1, "Report.pdf", 1, 1),
                file_row(2, "report.PDF", 1, 2),  # the same name, compared case-folded
                file_row(3, "Report (2).pdf", 1, 3),  # already holds the first number
                file_row(4, "Report.pdf", 1, 4),
                file_row(5, "Straße", 1, 5),
                file_row(6, "STRASSE", 1, 6),
                file_row(7, "Report.pdf", 2, 7),  # another organization: no clash
            ]
        ),
    )
    # Alembic's logging set-up (migrations/alembic.ini) replaces every handler when the
    # migration starts and writes to stderr, as `manage.py db upgrade` shows it.
    with app.app_context():
        upgrade()
        _db.engine.dispose()

    names = run(url, "SELECT filename, folder_id FROM files ORDER BY id")
    assert names == [
        ("Report.pdf", None),
        ("report (3).PDF", None),  # "report (2).pdf" is another file's own name
        ("Report (2).pdf", None),  # its name was its own: kept
        ("Report (4).pdf", None),
        ("Straße", None),
        ("STRASSE (2)", None),
        ("Report.pdf", None),  # another organization's
    ]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "renamed" in line]
    assert len(warnings) == 1 and "WARN" in warnings[0] and "3 file(s)" in warnings[0]
    # The names hold from now on: the unique index refuses a second "report.pdf" at the top.
    with pytest.raises(IntegrityError):
        run(
            url,
            "INSERT INTO files (id, filename, name_key, file_path, size, status, bytes_stored, "
            "organization_id, uploaded_at) VALUES ('00000000-0000-4000-8000-000000000099', "
            "'REPORT.pdf', 'report.pdf', 'p', 1, 'ready', true, 1, CURRENT_TIMESTAMP)",
        )

    with app.app_context():
        downgrade(revision=BEFORE_FOLDERS)
        upgrade()
        _db.engine.dispose()
    assert run(url, "SELECT count(*) FROM files") == [(7,)]
