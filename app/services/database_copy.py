"""`manage.py db copy`: every table of the app's database into another database that is
migrated to the same revision and empty (SQLite to PostgreSQL, or back)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    Table,
    create_engine,
    func,
    inspect,
    literal,
    select,
)
from sqlalchemy import text as sql
from sqlalchemy.engine import URL, make_url

from ..database import sqlite
from ..extensions import db
from ..models import FILE_SEARCH_TABLE, Folder

# Rows read and written at a time: memory stays flat whatever the size of a table.
BATCH_ROWS = 1000
# Each usage counter the triggers of migration 0011 keep, not the rows copied (see
# _copy_table()), and what it must equal: its organization's rows summed.
KEPT_COUNTERS = {
    "file_count": "SELECT count(*) FROM files f WHERE f.organization_id = o.id",
    # Every version's bytes: the files' own, and their other versions' (migration 0014).
    "used_bytes": "SELECT coalesce(sum(f.size), 0) FROM files f "
    "WHERE f.organization_id = o.id AND f.bytes_stored) + (SELECT coalesce(sum(v.size), 0) "
    "FROM file_versions v WHERE v.organization_id = o.id AND v.bytes_stored",
    "reserved_bytes": "SELECT coalesce(sum(r.length), 0) FROM resumable_uploads r "
    "WHERE r.organization_id = o.id AND r.completed_at IS NULL",
    **{
        f"files_{status}": "SELECT count(*) FROM files f "
        f"WHERE f.organization_id = o.id AND f.status = '{status}'"
        for status in ("pending", "processing", "ready", "failed")
    },
}
ALEMBIC_TABLE = "alembic_version"


class CopyRefused(Exception):
    """The copy cannot start (or could not be verified); nothing was written to the target."""


@dataclass
class CopyReport:
    """What one copy moved: the revision of both databases and the rows of each table."""

    source: str
    target: str
    revision: str
    rows: dict[str, int] = field(default_factory=dict)
    sequences_reset: list[str] = field(default_factory=list)


def target_url(url: str) -> URL:
    """The target's URL with the psycopg 3 driver named for PostgreSQL, as the app's own
    DATABASE_URL gets it (app/config.py); SQLAlchemy's default driver is not installed."""
    parsed = make_url(url.strip())
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def tables() -> list[Table]:
    """Every table of the models, parents before children: derived from the metadata, so a
    table added to the models is copied without a change here."""
    return list(db.metadata.sorted_tables)


def copy_database(
    target: str,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[str, int], Any] | None = None,
) -> CopyReport:
    """Copy every row of the app's database into the database at `target`, in one target
    transaction: on any error, or if the copy does not verify, the target is left empty.

    The target must be migrated to the source's revision (`manage.py db upgrade` with its
    DATABASE_URL) and hold no rows. The source is read in one snapshot and never written.
    """
    source_engine = db.engine
    url = target_url(target)
    if url.render_as_string(hide_password=False) == source_engine.url.render_as_string(
        hide_password=False
    ):
        raise CopyRefused("the target is the database Coffer uses now: name another one")
    target_engine = create_engine(url)
    if target_engine.dialect.name == "sqlite":
        # The app's own SQLite set-up: foreign keys enforced, WAL, explicit BEGIN.
        sqlite.configure(target_engine)
    report = CopyReport(
        source=source_engine.url.render_as_string(hide_password=True),
        target=url.render_as_string(hide_password=True),
        revision="",
    )
    try:
        with _snapshot(source_engine) as source, target_engine.connect() as destination:
            with destination.begin():
                report.revision = _same_revision(source, destination)
                _same_schema(source, destination)
                _refuse_rows(destination)
                for table in tables():
                    report.rows[table.name] = _copy_table(
                        table, source, destination, batch_rows, progress
                    )
                report.sequences_reset = _reset_sequences(destination)
                _verify(source, destination, report.rows)
    finally:
        target_engine.dispose()
    return report


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection to the source that sees one consistent state throughout."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # One snapshot for every table: rows written meanwhile are all in or all out.
            connection.execution_options(isolation_level="REPEATABLE READ")
        # SQLite: one read transaction is already a snapshot (WAL).
        with connection.begin() as transaction:
            yield connection
            transaction.rollback()


def _revision(connection: Connection) -> str | None:
    """The migration a database is at; None when it was never migrated."""
    if not inspect(connection).has_table(ALEMBIC_TABLE):
        return None
    return connection.execute(sql(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalar()


def _same_revision(source: Connection, target: Connection) -> str:
    """The revision both databases are at; refuses when they differ."""
    ours = _revision(source)
    theirs = _revision(target)
    if ours is None:
        raise CopyRefused("the source database is not migrated: nothing to copy")
    if theirs is None:
        raise CopyRefused(
            "the target database is not migrated: run `manage.py db upgrade` with "
            "DATABASE_URL set to it first"
        )
    if ours != theirs:
        raise CopyRefused(
            f"the source is at migration {ours} and the target at {theirs}: migrate both "
            "to the same one (`manage.py db upgrade` on each) first"
        )
    return ours


def _same_schema(source: Connection, target: Connection) -> None:
    """Refuse when either database has a table or a column the models do not, so that
    nothing is left behind unnoticed."""
    expected = {table.name: {column.name for column in table.columns} for table in tables()}
    for side, connection in (("source", source), ("target", target)):
        inspector = inspect(connection)
        found = {name for name in inspector.get_table_names() if not _derived(name)}
        if unknown := sorted(found - expected.keys()):
            raise CopyRefused(
                f"the {side} has table(s) Coffer's models do not know: {', '.join(unknown)}"
            )
        if missing := sorted(expected.keys() - found):
            raise CopyRefused(f"the {side} lacks table(s): {', '.join(missing)}")
        for name, columns in expected.items():
            actual = {column["name"] for column in inspector.get_columns(name)}
            if actual != columns:
                raise CopyRefused(
                    f"the {side}'s table {name} has columns {sorted(actual ^ columns)} "
                    "that differ from the models"
                )


def _derived(table_name: str) -> bool:
    """Whether a table is not data to copy: Alembic's own, or SQLite's name search index
    (its FTS5 table and shadow tables), which the target's triggers fill as files arrive."""
    return table_name == ALEMBIC_TABLE or (
        table_name == FILE_SEARCH_TABLE or table_name.startswith(f"{FILE_SEARCH_TABLE}_")
    )


def _refuse_rows(target: Connection) -> None:
    """Refuse a target that holds any row: the copy would mix two databases."""
    full = [
        table.name
        for table in tables()
        if target.execute(select(func.count()).select_from(table)).scalar_one()
    ]
    if full:
        raise CopyRefused(
            f"the target database is not empty (rows in {', '.join(full)}): copy only into a "
            "freshly migrated one"
        )


def _copy_table(
    table: Table,
    source: Connection,
    target: Connection,
    batch_rows: int,
    progress: Callable[[str, int], Any] | None,
) -> int:
    """Copy one table's rows in batches of `batch_rows`, in primary key order (folders
    parents first); their number."""
    ordered = in_copy_order(table)
    # yield_per: a server-side cursor on PostgreSQL, fetchmany on SQLite; never every row.
    result = source.execute(ordered.execution_options(yield_per=batch_rows))
    copied = 0
    for batch in result.partitions():
        rows = [row._asdict() for row in batch]
        if table.name == "organizations":
            # The usage counters start at zero: the target's own triggers (migration 0011)
            # count each file and upload row as it is inserted below, which copying the
            # source's values would count twice.
            for row in rows:
                row.update(dict.fromkeys(KEPT_COUNTERS, 0))
        target.execute(table.insert(), rows)
        copied += len(rows)
        if progress is not None:
            progress(table.name, copied)
    return copied


def in_copy_order(table: Table) -> Select[Any]:
    """A table's rows in primary key order; a folder's only after its parent's (a folder
    may have been moved into one created after it), so each row's parent is already there."""
    if table.name != Folder.__tablename__:
        return select(table).order_by(*table.primary_key.columns)
    folders = Folder.__table__
    tree = (
        select(folders.c.id, literal(0).label("depth"))
        .where(folders.c.parent_id.is_(None))
        .cte("tree", recursive=True)
    )
    tree = tree.union_all(
        select(folders.c.id, (tree.c.depth + 1).label("depth")).join(
            tree, folders.c.parent_id == tree.c.id
        )
    )
    return select(table).join(tree, tree.c.id == table.c.id).order_by(tree.c.depth, table.c.id)


def _reset_sequences(target: Connection) -> list[str]:
    """Move PostgreSQL's id sequences past the copied ids, so new rows get fresh ones.

    SQLite needs nothing: its tables take max(id) + 1 (none uses AUTOINCREMENT).
    """
    if target.dialect.name != "postgresql":
        return []
    reset = []
    for table in tables():
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            sequence = target.execute(
                sql("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            ).scalar()
            if sequence is None:
                continue
            highest = target.execute(select(func.max(column))).scalar()
            # is_called false: the next id handed out is exactly this value.
            target.execute(
                sql("SELECT setval(:sequence, :next, false)"),
                {"sequence": sequence, "next": (highest or 0) + 1},
            )
            reset.append(sequence)
    return reset


def _verify(source: Connection, target: Connection, copied: dict[str, int]) -> None:
    """Compare every table's rows with the source's, and the usage counters with the copied
    file and upload rows; raises (and the target's transaction rolls back) on a difference."""
    for table in tables():
        expected = source.execute(select(func.count()).select_from(table)).scalar_one()
        found = target.execute(select(func.count()).select_from(table)).scalar_one()
        if not expected == found == copied[table.name]:
            raise CopyRefused(
                f"table {table.name}: {expected} row(s) in the source, {found} in the target; "
                "nothing was copied"
            )
    for counter, actual in KEPT_COUNTERS.items():
        wrong = target.execute(
            sql(f"SELECT count(*) FROM organizations o WHERE o.{counter} <> ({actual})")
        ).scalar_one()
        if wrong:
            raise CopyRefused(
                f"{counter} disagrees with the copied rows in {wrong} organization(s): are "
                "the triggers of migration 0011 missing from the target? nothing was copied"
            )
