"""Databases for tests: scratch databases made and dropped, a write outside any request,
and a lock that holds a validation job mid-way."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app import create_app
from app.config import database_url as config_database_url
from app.extensions import db as _db


@contextlib.contextmanager
def fresh_database(directory: Path, prefix: str) -> Iterator[str]:
    """An empty database: a SQLite file in `directory`, or, when DATABASE_URL names a
    PostgreSQL server, a new database `<prefix>_<random>` there, dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        yield f"sqlite:///{directory / 'coffer.db'}"
        return
    server_url = make_url(config_database_url(url, Path("/nonexistent")))
    with scratch_database(server_url, prefix) as url:
        yield url


def migrated_app(url: str, redis_url: str, instance: Path, revision: str = "head") -> Flask:
    """An app on the database at `url`, with the migrations applied up to `revision`."""
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url, "INSTANCE_PATH": str(instance)}
    )
    with app.app_context():
        upgrade(revision=revision)
        _db.engine.dispose()
    return app


@contextlib.contextmanager
def migrated_to(
    directory: Path, prefix: str, revision: str, redis_url: str
) -> Iterator[tuple[Flask, str]]:
    """An app on a scratch database migrated up to `revision` only, and the database's
    URL: the migrations after it are the test's to run."""
    with fresh_database(directory, prefix) as url:
        app = migrated_app(url, redis_url, directory / "instance", revision)
        yield app, url
        with app.app_context():
            _db.engine.dispose()


@contextlib.contextmanager
def scratch_database(server_url: URL, prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<random>` on a PostgreSQL server, dropped afterwards; the
    server's own database is never touched."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def run_sql(app: Flask, statement: Any) -> None:
    """Run one write outside any request.

    Its own short app context: requests made while a test holds one would share it,
    and with it Flask-Login's cached user and the session's identity map.
    """
    with app.app_context():
        _db.session.execute(statement)
        _db.session.commit()
        _db.session.remove()


@contextlib.contextmanager
def validation_blocked(database_url: str, file_id: str) -> Iterator[None]:
    """Hold, from a connection of the test's own, the lock a validation of this file needs.

    SQLite: the database's single write lock; PostgreSQL: the file's row lock. A job for
    the file then waits inside its first status move, mid-job, until the block ends.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT id FROM files WHERE id = :id FOR UPDATE"), {"id": file_id}
            )
            yield
    finally:
        engine.dispose()


REFUSAL = "coffer_refuse_file_rows"


@contextlib.contextmanager
def file_rows_refused(app: Flask) -> Iterator[None]:
    """A real trigger that aborts every INSERT into files, dropped afterwards."""
    with app.app_context():
        engine = _db.engine
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        if sqlite:
            connection.exec_driver_sql(
                f"CREATE TRIGGER {REFUSAL} BEFORE INSERT ON files "
                "BEGIN SELECT RAISE(ABORT, 'files refuses new rows'); END"
            )
        else:
            connection.exec_driver_sql(
                f"CREATE FUNCTION {REFUSAL}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'files refuses new rows'; END $$"
            )
            connection.exec_driver_sql(
                f"CREATE TRIGGER {REFUSAL} BEFORE INSERT ON files "
                f"FOR EACH ROW EXECUTE FUNCTION {REFUSAL}()"
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if sqlite:
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {REFUSAL}")
            else:
                connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {REFUSAL} ON files")
                connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {REFUSAL}()")
