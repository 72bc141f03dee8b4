"""Database engine set-up and the one way Coffer writes: `write_transaction()`."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import scoped_session

from .extensions import db

log = logging.getLogger(__name__)

# Whether the next SQLite transaction this context opens should take the write lock.
_immediate: ContextVar[bool] = ContextVar("coffer_sqlite_immediate", default=False)

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


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL, a busy timeout, and transactions Coffer begins itself."""

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
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")


def init_app(app: Flask) -> None:
    """Bind Flask-SQLAlchemy and set up the SQLite pragmas when SQLite is in use."""
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)


class WriterLock:
    """One writer at a time on a SQLite file across Coffer's processes, in turn.

    SQLite's busy handler polls, sleeping up to 100 ms between tries, so under a
    steady stream of writes a waiting process keeps missing its turn (the worker
    behind a busy web server waited out nearly half of each job). An OS lock on a file
    beside the database queues Coffer's writers instead and wakes the next one when it
    is released; BEGIN IMMEDIATE then finds the database free. Other programs writing
    the database still meet the busy timeout, and so does Coffer when the lock file
    cannot be opened (say, made by another user). Waiting has no deadline: a holder
    that dies releases the lock with its descriptor, and nothing done while holding it
    waits without bound (its statements meet the busy timeout).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd = -1
        self._unavailable = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock (re-entrant within a thread)."""
        with self._threads:
            if self._depth == 0 and self._open():
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd >= 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> bool:
        """Open the lock file once; False (SQLite's busy timeout alone) when it cannot be."""
        if self._fd < 0 and not self._unavailable:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                self._unavailable = True
                log.warning("writers wait on SQLite's busy timeout alone: %s", exc)
        return self._fd >= 0

    def forget(self) -> None:
        """Drop this process's copy of a parent's descriptor (the parent keeps its lock)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_writer_locks: dict[str, WriterLock] = {}
_writer_locks_guard = threading.Lock()


def writer_lock(database: str) -> WriterLock:
    """This process's writer lock for a SQLite database file."""
    lock = _writer_locks.get(database)
    if lock is None:
        with _writer_locks_guard:
            lock = _writer_locks.setdefault(database, WriterLock(f"{database}.writer-lock"))
    return lock


def _app_writer_lock() -> WriterLock | None:
    """The writer lock of the app's SQLite file; None for PostgreSQL or a memory database."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return writer_lock(url.database)


def _writer_locks_after_fork() -> None:
    # A forked child (RQ's work horse) takes its own locks: a lock held through an
    # inherited descriptor would be the parent's, and unlocking it would free the parent's.
    global _writer_locks_guard
    for lock in _writer_locks.values():
        lock.forget()
    _writer_locks.clear()
    _writer_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_writer_locks_after_fork)


@contextmanager
def write_transaction() -> Iterator[scoped_session]:
    """Run a unit of writes atomically: commit on success, roll back on any error.

    Any read transaction the request already holds is ended first, so on SQLite the
    unit starts with BEGIN IMMEDIATE, after its turn at the writer lock.
    """
    session = db.session
    session.commit()
    lock = _app_writer_lock()
    with lock.held() if lock is not None else nullcontext():
        token = _immediate.set(True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            _immediate.reset(token)


def is_sqlite() -> bool:
    """Whether the app runs on SQLite."""
    return db.engine.dialect.name == "sqlite"
