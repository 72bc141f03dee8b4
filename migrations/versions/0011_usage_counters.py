"""Every usage counter of an organization, kept by the database.

Migration 0008 gave the files per status to triggers; the quota's counters (`used_bytes`,
`file_count`, `reserved_bytes`) were still moved by hand, by each path that adds, removes
or changes a file or a resumable upload. Its argument holds for them too: a trigger counts
every way a row comes, goes or changes (uploads, tus completions, deletes, the job's
verdicts dropping bytes, an operator's SQL, a bulk seed) in the same transaction, with no
path to forget. The triggers here replace 0008's and keep, per organization:

- `file_count`: its rows of `files`;
- `used_bytes`: the `size` of its files whose `bytes_stored` is true;
- `files_<status>`: its files of each status, as 0008 did;
- `reserved_bytes`: the `length` of its resumable uploads not completed (`completed_at`
  is NULL), the bytes held against the quota until they become a file or go.

The quota is then checked after the write, in the same transaction, against the counters
the triggers moved (app/files/ledger.py). On PostgreSQL the trigger's UPDATE of the
organization's row locks it until the commit, so a concurrent upload's check waits and
then sees the other's bytes; on SQLite one writer runs at a time.

The upgrade counts every counter afresh from the rows, which also mends any drift; the
downgrade restores 0008's triggers and leaves the counters as they stand.

Revision ID: 0011_usage_counters
Revises: 0010_organization_name_skeleton
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0011_usage_counters"
down_revision = "0010_organization_name_skeleton"
branch_labels = None
depends_on = None

STATUSES = ("pending", "processing", "ready", "failed")


def column(status):
    """The counter column of one status."""
    return f"files_{status}"


def stored(row):
    """The bytes a file row adds to `used_bytes` (SQLite: a boolean is 0 or 1)."""
    return f"(CASE WHEN {row}.bytes_stored THEN {row}.size ELSE 0 END)"


def held(row):
    """The bytes a resumable upload's row holds against the quota."""
    return f"(CASE WHEN {row}.completed_at IS NULL THEN {row}.length ELSE 0 END)"


def row_changes(sign, row, cast=""):
    """Every files counter moved by one row coming (+) or going (-)."""
    return ",\n        ".join(
        [
            f"file_count = file_count {sign} 1",
            f"used_bytes = used_bytes {sign} {stored(row)}",
        ]
        + [f"{column(s)} = {column(s)} {sign} ({row}.status = '{s}'){cast}" for s in STATUSES]
    )


def row_moves(cast=""):
    """The files counters moved from OLD's values to NEW's (the row count stays)."""
    return ",\n        ".join(
        [f"used_bytes = used_bytes - {stored('OLD')} + {stored('NEW')}"]
        + [
            f"{column(s)} = {column(s)} - (OLD.status = '{s}'){cast} + (NEW.status = '{s}'){cast}"
            for s in STATUSES
        ]
    )


# Whether an UPDATE of a file row moves any counter (rows never change organization).
FILE_MOVED = (
    "OLD.status IS DISTINCT FROM NEW.status OR OLD.size IS DISTINCT FROM NEW.size "
    "OR OLD.bytes_stored IS DISTINCT FROM NEW.bytes_stored"
)
# Whether an UPDATE of a resumable upload's row moves its holding.
UPLOAD_MOVED = (
    "(OLD.completed_at IS NULL) <> (NEW.completed_at IS NULL) "
    "OR OLD.length IS DISTINCT FROM NEW.length"
)


def sqlite_distinct(condition):
    """SQLite spells IS DISTINCT FROM as IS NOT."""
    return condition.replace("IS DISTINCT FROM", "IS NOT")


SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER files_usage_insert AFTER INSERT ON files
    BEGIN
      UPDATE organizations SET
        {row_changes("+", "NEW")}
      WHERE id = NEW.organization_id;
    END""",
    f"""CREATE TRIGGER files_usage_delete AFTER DELETE ON files
    BEGIN
      UPDATE organizations SET
        {row_changes("-", "OLD")}
      WHERE id = OLD.organization_id;
    END""",
    f"""CREATE TRIGGER files_usage_update AFTER UPDATE OF status, size, bytes_stored ON files
    WHEN {sqlite_distinct(FILE_MOVED)}
    BEGIN
      UPDATE organizations SET
        {row_moves()}
      WHERE id = NEW.organization_id;
    END""",
    """CREATE TRIGGER resumable_holds_insert AFTER INSERT ON resumable_uploads
    WHEN NEW.completed_at IS NULL
    BEGIN
      UPDATE organizations SET reserved_bytes = reserved_bytes + NEW.length
      WHERE id = NEW.organization_id;
    END""",
    """CREATE TRIGGER resumable_holds_delete AFTER DELETE ON resumable_uploads
    WHEN OLD.completed_at IS NULL
    BEGIN
      UPDATE organizations SET reserved_bytes = reserved_bytes - OLD.length
      WHERE id = OLD.organization_id;
    END""",
    f"""CREATE TRIGGER resumable_holds_update
    AFTER UPDATE OF completed_at, length ON resumable_uploads
    WHEN {sqlite_distinct(UPLOAD_MOVED)}
    BEGIN
      UPDATE organizations SET reserved_bytes = reserved_bytes - {held("OLD")} + {held("NEW")}
      WHERE id = NEW.organization_id;
    END""",
)
SQLITE_NAMES = (
    "files_usage_insert",
    "files_usage_delete",
    "files_usage_update",
    "resumable_holds_insert",
    "resumable_holds_delete",
    "resumable_holds_update",
)


def per_organization(table):
    """A query of each organization's file counters in a transition table."""
    counts = ", ".join(
        ["count(*) AS file_count", "coalesce(sum(size) FILTER (WHERE bytes_stored), 0) AS used"]
        + [f"count(*) FILTER (WHERE status = '{s}') AS {column(s)}" for s in STATUSES]
    )
    return f"SELECT organization_id, {counts} FROM {table} GROUP BY organization_id"


def apply(sign, table):
    """Add (or take away) a transition table's file rows from the counters."""
    sets = ", ".join(
        [f"file_count = o.file_count {sign} c.file_count", f"used_bytes = o.used_bytes {sign} c.used"]
        + [f"{column(s)} = o.{column(s)} {sign} c.{column(s)}" for s in STATUSES]
    )
    return (
        f"UPDATE organizations o SET {sets} FROM ({per_organization(table)}) c "
        "WHERE o.id = c.organization_id;"
    )


def apply_holds(sign, table):
    """Add (or take away) a transition table's unfinished uploads from `reserved_bytes`."""
    return (
        f"UPDATE organizations o SET reserved_bytes = o.reserved_bytes {sign} c.held "
        f"FROM (SELECT organization_id, sum(length) AS held FROM {table} "
        "WHERE completed_at IS NULL GROUP BY organization_id) c "
        "WHERE o.id = c.organization_id;"
    )


# As 0008: inserts and deletes count once per statement, from its transition table (a bulk
# insert would otherwise write the organization's row once per row); an update is one row
# at a time in Coffer, so it has a row trigger, which PostgreSQL skips without calling it
# when no counted column changed (its WHEN clause).
POSTGRESQL_FUNCTIONS = (
    f"""CREATE FUNCTION files_usage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply("+", "new_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION files_usage_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply("-", "old_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION files_usage_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE organizations SET
        {row_moves("::int")}
      WHERE id = NEW.organization_id;
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION resumable_holds_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply_holds("+", "new_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION resumable_holds_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply_holds("-", "old_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION resumable_holds_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE organizations SET reserved_bytes = reserved_bytes - {held("OLD")} + {held("NEW")}
      WHERE id = NEW.organization_id;
      RETURN NULL;
    END $$""",
)
POSTGRESQL_TRIGGERS = (
    "CREATE TRIGGER files_usage_insert AFTER INSERT ON files "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION files_usage_insert()",
    "CREATE TRIGGER files_usage_delete AFTER DELETE ON files "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION files_usage_delete()",
    "CREATE TRIGGER files_usage_update AFTER UPDATE OF status, size, bytes_stored ON files "
    f"FOR EACH ROW WHEN ({FILE_MOVED}) EXECUTE FUNCTION files_usage_update()",
    "CREATE TRIGGER resumable_holds_insert AFTER INSERT ON resumable_uploads "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION resumable_holds_insert()",
    "CREATE TRIGGER resumable_holds_delete AFTER DELETE ON resumable_uploads "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION resumable_holds_delete()",
    "CREATE TRIGGER resumable_holds_update AFTER UPDATE OF completed_at, length "
    f"ON resumable_uploads FOR EACH ROW WHEN ({UPLOAD_MOVED}) "
    "EXECUTE FUNCTION resumable_holds_update()",
)
POSTGRESQL_NAMES = (
    ("files_usage_insert", "files"),
    ("files_usage_delete", "files"),
    ("files_usage_update", "files"),
    ("resumable_holds_insert", "resumable_uploads"),
    ("resumable_holds_delete", "resumable_uploads"),
    ("resumable_holds_update", "resumable_uploads"),
)

# Every counter from the rows, whatever it said before.
RECOUNT = "UPDATE organizations SET " + ",\n  ".join(
    [
        "file_count = (SELECT count(*) FROM files WHERE files.organization_id = organizations.id)",
        "used_bytes = (SELECT coalesce(sum(size), 0) FROM files "
        "WHERE files.organization_id = organizations.id AND files.bytes_stored)",
        "reserved_bytes = (SELECT coalesce(sum(length), 0) FROM resumable_uploads "
        "WHERE resumable_uploads.organization_id = organizations.id "
        "AND resumable_uploads.completed_at IS NULL)",
    ]
    + [
        f"{column(s)} = (SELECT count(*) FROM files "
        f"WHERE files.organization_id = organizations.id AND files.status = '{s}')"
        for s in STATUSES
    ]
)


def status_counts():
    """Migration 0008, whose triggers the downgrade restores exactly as it made them."""
    path = Path(__file__).with_name("0008_file_status_counts.py")
    spec = importlib.util.spec_from_file_location("coffer_migration_0008", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in ("files_count_insert", "files_count_delete", "files_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON files")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        for statement in POSTGRESQL_FUNCTIONS + POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for name in ("files_count_insert", "files_count_delete", "files_count_status"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    # After the triggers are in place: on PostgreSQL their DROP and CREATE lock the tables,
    # so no row written meanwhile goes uncounted.
    op.execute(RECOUNT)


def downgrade():
    previous = status_counts()
    if op.get_bind().dialect.name == "postgresql":
        for name, table in POSTGRESQL_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        for statement in previous.POSTGRESQL_FUNCTIONS + previous.POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for name in SQLITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in previous.SQLITE_TRIGGERS:
            op.execute(statement)
