"""Alembic environment: runs Coffer's migrations on the app's engine, one runner at a time."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import Connection

config = context.config
# Keep the app's own loggers working when migrations run inside it.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
MIGRATION_LOCK_ID = 0x436F66666572  # "Coffer": one advisory lock for the whole cluster


def get_metadata():
    """The models' metadata, for autogenerate."""
    return target_db.metadata


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Serialise migration runs, so two processes starting at once do not collide."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    elif connection.dialect.name == "sqlite" and connection.engine.url.database:
        lock_path = Path(connection.engine.url.database + ".migrate.lock")
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


def run_migrations_offline() -> None:
    """Emit SQL for the migrations without a database."""
    context.configure(
        url=str(target_db.engine.url), target_metadata=get_metadata(), literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply the migrations to the app's database."""

    def skip_empty_autogenerate(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", skip_empty_autogenerate)

    with target_db.engine.connect() as connection, migration_lock(connection):
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            **conf_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
