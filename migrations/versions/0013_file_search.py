"""Name search and the organization-wide sorts: each database's own substring index.

`GET /api/files?q=` finds names containing a text (compared as names are: `name_key`),
`sort=name|size` orders an organization's files. Without an index the first is a scan of
every name and the second a sort of every row, per request.

- The organization's files by name and by size: (organization_id, name_key, id) and
  (organization_id, size, id), the keyset pages walk them in order (a folder's own files
  already have theirs, migration 0012).
- PostgreSQL: `pg_trgm` and a GIN trigram index on `files.name_key`, which serves
  `name_key LIKE '%text%'` for texts of three characters or more.
- SQLite: an FTS5 table with the trigram tokenizer over `files.name_key`, external content
  (it stores no names of its own, only the index, keyed by the files' rowid), kept by three
  triggers on `files`. The counting triggers of migration 0011 stay as they are: these are
  added beside them and the table is never rebuilt.

Revision ID: 0013_file_search
Revises: 0012_folders
Create Date: 2026-12-07
"""

from alembic import op

revision = "0013_file_search"
down_revision = "0012_folders"
branch_labels = None
depends_on = None

# app/files/listing.py names this table in its search queries.
SEARCH_TABLE = "files_name_search"
SQLITE_TRIGGERS = {
    "files_name_search_insert": f"""
        CREATE TRIGGER files_name_search_insert AFTER INSERT ON files
        BEGIN
            INSERT INTO {SEARCH_TABLE} (rowid, name_key) VALUES (new.rowid, new.name_key);
        END""",
    "files_name_search_delete": f"""
        CREATE TRIGGER files_name_search_delete AFTER DELETE ON files
        BEGIN
            INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, name_key)
            VALUES ('delete', old.rowid, old.name_key);
        END""",
    # Only a change of the compared name touches the index (a status move does not).
    "files_name_search_update": f"""
        CREATE TRIGGER files_name_search_update AFTER UPDATE OF name_key ON files
        BEGIN
            INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, name_key)
            VALUES ('delete', old.rowid, old.name_key);
            INSERT INTO {SEARCH_TABLE} (rowid, name_key) VALUES (new.rowid, new.name_key);
        END""",
}


def upgrade():
    op.create_index("ix_files_org_name", "files", ["organization_id", "name_key", "id"])
    op.create_index("ix_files_org_size", "files", ["organization_id", "size", "id"])
    if op.get_bind().dialect.name == "postgresql":
        # Trusted since PostgreSQL 13: the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_files_name_trigram ON files USING gin (name_key gin_trgm_ops)"
        )
        return
    # case_sensitive 1: names and texts are both compared in their case-folded form already.
    op.execute(
        f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(name_key, content='files', "
        "content_rowid='rowid', tokenize='trigram case_sensitive 1')"
    )
    for statement in SQLITE_TRIGGERS.values():
        op.execute(statement)
    # The names already there.
    op.execute(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_files_name_trigram")
        # The extension stays: another schema of the database may use it.
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute(f"DROP TABLE {SEARCH_TABLE}")
    op.drop_index("ix_files_org_size", table_name="files")
    op.drop_index("ix_files_org_name", table_name="files")
