"""The database: engine set-up, the SQLite writer lock, and `write_transaction()`."""

from __future__ import annotations

from flask import Flask

from ..extensions import db
from . import sqlite
from .transactions import NestedWriteTransaction, write_transaction
from .writer_lock import WriterLock, writer_lock

__all__ = [
    "NestedWriteTransaction",
    "WriterLock",
    "init_app",
    "is_sqlite",
    "write_transaction",
    "writer_lock",
]


def init_app(app: Flask) -> None:
    """Bind Flask-SQLAlchemy and set up the SQLite pragmas when SQLite is in use."""
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sqlite.configure(db.engine)


def is_sqlite() -> bool:
    """Whether the app runs on SQLite."""
    return db.engine.dialect.name == "sqlite"
