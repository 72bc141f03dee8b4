"""SQLite set-up: private files, foreign keys, WAL, a busy timeout, and BEGIN IMMEDIATE
for writers."""

from __future__ import annotations

import os
import sqlite3
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# Whether the next SQLite transaction this context opens should take the write lock.
immediate: ContextVar[bool] = ContextVar("coffer_sqlite_immediate", default=False)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch a new database to WAL, waiting while another process does the same.

    The switch needs the database to itself and SQLite answers a concurrent one with
    "database is locked" at once, not through the busy timeout (two processes starting
    on a fresh database at the same moment), so it is retried here for a while.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# The database holds webhook secrets and password hashes: owner only, like the uploads.
FILE_MODE = 0o600


def make_private(engine: Engine) -> None:
    """Create the database file readable by its owner only, or make an existing one so,
    with its -wal and -shm (SQLite gives those the database file's own mode)."""
    name = engine.url.database or ""
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if file.stat().st_mode & 0o777 != FILE_MODE:
                file.chmod(FILE_MODE)
        except FileNotFoundError:
            continue


def configure(engine: Engine) -> None:
    """The files private; foreign keys on, WAL, a busy timeout, and transactions Coffer
    begins itself."""
    make_private(engine)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, so writers can ask for
        # BEGIN IMMEDIATE (pysqlite would otherwise begin lazily on its own).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # A write transaction takes the lock up front: a deferred one that read first
        # and then tries to write fails at once with "database is locked" when another
        # writer got in between, whatever the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate.get() else "BEGIN")
