"""The one way Coffer writes: `write_transaction()`, atomic, and never nested."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from flask_sqlalchemy.session import Session
from sqlalchemy.orm import scoped_session

from ..extensions import db
from .sqlite import immediate
from .writer_lock import WriterLock, writer_lock


class NestedWriteTransaction(RuntimeError):
    """write_transaction() was entered inside another one, whose unit it would split."""


def _app_writer_lock() -> WriterLock | None:
    """The writer lock of the app's SQLite file; None for PostgreSQL or a memory database."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return writer_lock(url.database)


@contextmanager
def write_transaction() -> Iterator[scoped_session[Session]]:
    """Run a unit of writes atomically: commit on success, roll back on any error.

    Any read transaction the request already holds is ended first, so on SQLite the
    unit starts with BEGIN IMMEDIATE, after its turn at the writer lock. Entering it
    inside another unit raises: the commit at its start would end the outer one early.
    """
    if immediate.get():
        raise NestedWriteTransaction("write_transaction() is already open in this context")
    session = db.session
    session.commit()
    lock = _app_writer_lock()
    with lock.held() if lock is not None else nullcontext():
        token = immediate.set(True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            immediate.reset(token)
