"""The trash and versions: nothing is lost by a click.

- `files` and `folders` gain `trashed_at`, `trashed_by` and `trash_root` (the id of the
  item that was put in the trash: the row itself, or the folder it was trashed with) and
  `purging` (set once its removal for good has begun: a restore no longer takes it, and a
  sweep that was cut short finishes it). A trashed row keeps its place and name; the names
  index leaves trashed rows out, so the name is free for new files at once and a restore
  renames only when it is taken by then.
- `files.version`: the number of the version the file answers with (1 for every file so
  far); `file_versions` holds the others: older versions and new ones not yet validated.
  Every version's bytes count in the organization's `used_bytes` (triggers here, as 0011's
  do for files).
- `organizations.trash_retention_days` and `versions_kept`: NULL follows the settings
  TRASH_RETENTION_DAYS and VERSIONS_KEPT.
- `files.crc32` and `file_versions.crc32`: the CRC-32 of the bytes, recorded by validation,
  so a zip can store a file without reading it twice (NULL for files validated before).

Revision ID: 0014_trash_versions
Revises: 0013_file_search
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_trash_versions"
down_revision = "0013_file_search"
branch_labels = None
depends_on = None

FILE_PLACE = sa.text("coalesce(folder_id, '')")
FOLDER_PLACE = sa.text("coalesce(parent_id, '')")
LIVE = sa.text("trashed_at IS NULL")
TRASHED = sa.text("trashed_at IS NOT NULL")


def stored(row):
    """The bytes a version row adds to `used_bytes` (SQLite: a boolean is 0 or 1)."""
    return f"(CASE WHEN {row}.bytes_stored THEN {row}.size ELSE 0 END)"


VERSION_MOVED = (
    "OLD.size IS DISTINCT FROM NEW.size OR OLD.bytes_stored IS DISTINCT FROM NEW.bytes_stored"
)

SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER file_versions_usage_insert AFTER INSERT ON file_versions
    BEGIN
      UPDATE organizations SET used_bytes = used_bytes + {stored("NEW")}
      WHERE id = NEW.organization_id;
    END""",
    f"""CREATE TRIGGER file_versions_usage_delete AFTER DELETE ON file_versions
    BEGIN
      UPDATE organizations SET used_bytes = used_bytes - {stored("OLD")}
      WHERE id = OLD.organization_id;
    END""",
    f"""CREATE TRIGGER file_versions_usage_update AFTER UPDATE OF size, bytes_stored
    ON file_versions WHEN {VERSION_MOVED.replace("IS DISTINCT FROM", "IS NOT")}
    BEGIN
      UPDATE organizations SET used_bytes = used_bytes - {stored("OLD")} + {stored("NEW")}
      WHERE id = NEW.organization_id;
    END""",
)


def apply(sign, table):
    """Add (or take away) a transition table's version bytes from `used_bytes`."""
    return (
        f"UPDATE organizations o SET used_bytes = o.used_bytes {sign} c.used "
        f"FROM (SELECT organization_id, coalesce(sum(size) FILTER (WHERE bytes_stored), 0) "
        f"AS used FROM {table} GROUP BY organization_id) c WHERE o.id = c.organization_id;"
    )


POSTGRESQL_FUNCTIONS = (
    f"""CREATE FUNCTION file_versions_usage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply("+", "new_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION file_versions_usage_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply("-", "old_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION file_versions_usage_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE organizations SET used_bytes = used_bytes - {stored("OLD")} + {stored("NEW")}
      WHERE id = NEW.organization_id;
      RETURN NULL;
    END $$""",
)
POSTGRESQL_TRIGGERS = (
    "CREATE TRIGGER file_versions_usage_insert AFTER INSERT ON file_versions "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION file_versions_usage_insert()",
    # Statement-level on delete: a file's removal takes its versions with it (ON DELETE
    # CASCADE), many rows in one statement.
    "CREATE TRIGGER file_versions_usage_delete AFTER DELETE ON file_versions "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION file_versions_usage_delete()",
    "CREATE TRIGGER file_versions_usage_update AFTER UPDATE OF size, bytes_stored "
    f"ON file_versions FOR EACH ROW WHEN ({VERSION_MOVED}) "
    "EXECUTE FUNCTION file_versions_usage_update()",
)
TRIGGER_NAMES = (
    "file_versions_usage_insert",
    "file_versions_usage_delete",
    "file_versions_usage_update",
)


def add_trash_columns(connection, table):
    """trashed_at, trashed_by, trash_root and purging on `table`."""
    op.add_column(table, sa.Column("trashed_at", sa.DateTime(), nullable=True))
    if connection.dialect.name == "postgresql":
        op.add_column(
            table,
            sa.Column("trashed_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        )
    else:
        # A plain ADD COLUMN: Alembic adds a foreign key on SQLite only by rebuilding the
        # table, which would drop its triggers.
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN trashed_by INTEGER "
            "REFERENCES users (id) ON DELETE SET NULL"
        )
    op.add_column(table, sa.Column("trash_root", sa.String(length=36), nullable=True))
    op.add_column(
        table, sa.Column("purging", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def upgrade():
    connection = op.get_bind()
    for table in ("files", "folders"):
        add_trash_columns(connection, table)
    op.add_column("files", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("files", sa.Column("crc32", sa.BigInteger(), nullable=True))
    op.add_column("organizations", sa.Column("trash_retention_days", sa.Integer(), nullable=True))
    op.add_column("organizations", sa.Column("versions_kept", sa.Integer(), nullable=True))

    # Names are unique among the rows not in the trash.
    op.drop_index("uq_files_place", table_name="files")
    op.create_index(
        "uq_files_place",
        "files",
        ["organization_id", FILE_PLACE, "name_key"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.drop_index("uq_folders_place", table_name="folders")
    op.create_index(
        "uq_folders_place",
        "folders",
        ["organization_id", FOLDER_PLACE, "name_key"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    # The trash, newest first, and the sweep's purge of what is due; what was trashed with
    # a folder.
    for table in ("files", "folders"):
        op.create_index(
            f"ix_{table}_trash",
            table,
            ["organization_id", "trashed_at", "id"],
            sqlite_where=TRASHED,
            postgresql_where=TRASHED,
        )
        op.create_index(
            f"ix_{table}_trash_root",
            table,
            ["trash_root"],
            sqlite_where=TRASHED,
            postgresql_where=TRASHED,
        )
    op.create_index(
        "ix_files_trashed_at",
        "files",
        ["trashed_at"],
        sqlite_where=TRASHED,
        postgresql_where=TRASHED,
    )
    op.create_index(
        "ix_folders_trashed_at",
        "folders",
        ["trashed_at"],
        sqlite_where=TRASHED,
        postgresql_where=TRASHED,
    )

    op.create_table(
        "file_versions",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column(
            "file_id",
            sa.String(length=36),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("file_path", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("crc32", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("bytes_stored", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "uploaded_by",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
    )
    op.create_index("uq_file_versions_number", "file_versions", ["file_id", "version"], unique=True)
    op.create_index("ix_file_versions_org", "file_versions", ["organization_id"])
    op.create_index("ix_file_versions_status", "file_versions", ["status"])

    if connection.dialect.name == "postgresql":
        for statement in POSTGRESQL_FUNCTIONS + POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for name in TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON file_versions")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    # Older versions' bytes leave the usage with their rows (the counters then hold the
    # files alone, as 0013's triggers keep them).
    op.execute(
        "UPDATE organizations SET used_bytes = used_bytes - (SELECT coalesce(sum(size), 0) "
        "FROM file_versions WHERE file_versions.organization_id = organizations.id "
        "AND file_versions.bytes_stored)"
    )
    op.drop_table("file_versions")
    for table in ("files", "folders"):
        op.drop_index(f"ix_{table}_trashed_at", table_name=table)
        op.drop_index(f"ix_{table}_trash_root", table_name=table)
        op.drop_index(f"ix_{table}_trash", table_name=table)
    op.drop_index("uq_folders_place", table_name="folders")
    op.create_index(
        "uq_folders_place", "folders", ["organization_id", FOLDER_PLACE, "name_key"], unique=True
    )
    op.drop_index("uq_files_place", table_name="files")
    op.create_index(
        "uq_files_place", "files", ["organization_id", FILE_PLACE, "name_key"], unique=True
    )
    columns = {
        "files": ("purging", "trash_root", "trashed_by", "trashed_at", "version", "crc32"),
        "folders": ("purging", "trash_root", "trashed_by", "trashed_at"),
        "organizations": ("versions_kept", "trash_retention_days"),
    }
    for table, names in columns.items():
        for name in names:
            if connection.dialect.name == "postgresql":
                op.drop_column(table, name)
            else:
                # SQLite 3.35+ drops a plain column in place (no rebuild, triggers kept).
                op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
