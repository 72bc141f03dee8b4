"""Files per status, kept on each organization by the database.

A `?status=` listing's total was a COUNT over the organization's rows of that status,
about a million index entries for the `ready` files of a large organization. Triggers keep
one counter per status beside `file_count`, so the total is one row's read. The database
keeps them (not the application) because every way a row comes, goes or changes status
(uploads, tus completions, the job's moves, requeues, deletes, an operator's SQL, a bulk
seed) then counts, in the same transaction, with no path to forget.

Revision ID: 0008_file_status_counts
Revises: 0007_share_links_webhooks
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_file_status_counts"
down_revision = "0007_share_links_webhooks"
branch_labels = None
depends_on = None

STATUSES = ("pending", "processing", "ready", "failed")


def column(status):
    """The counter column of one status."""
    return f"files_{status}"


def changes(sign, row):
    """`files_<status> = files_<status> <sign> (<row>.status = '<status>')` for each status
    (SQLite: a comparison is 0 or 1)."""
    return ",\n        ".join(
        f"{column(s)} = {column(s)} {sign} ({row}.status = '{s}')" for s in STATUSES
    )


def both(cast=""):
    """The counters moved from OLD's status to NEW's (a comparison is 0 or 1 on SQLite;
    PostgreSQL casts it)."""
    return ",\n        ".join(
        f"{column(s)} = {column(s)} - (OLD.status = '{s}'){cast} + (NEW.status = '{s}'){cast}"
        for s in STATUSES
    )


SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER files_count_insert AFTER INSERT ON files
    BEGIN
      UPDATE organizations SET
        {changes("+", "NEW")}
      WHERE id = NEW.organization_id;
    END""",
    f"""CREATE TRIGGER files_count_delete AFTER DELETE ON files
    BEGIN
      UPDATE organizations SET
        {changes("-", "OLD")}
      WHERE id = OLD.organization_id;
    END""",
    f"""CREATE TRIGGER files_count_status AFTER UPDATE OF status ON files
    WHEN OLD.status <> NEW.status
    BEGIN
      UPDATE organizations SET
        {both()}
      WHERE id = NEW.organization_id;
    END""",
)


def per_organization(table):
    """A query of each organization's rows per status in a transition table."""
    counts = ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS {column(s)}" for s in STATUSES)
    return f"SELECT organization_id, {counts} FROM {table} GROUP BY organization_id"


def apply(sign, table):
    """Add (or take away) a transition table's rows from the counters."""
    sets = ", ".join(f"{column(s)} = o.{column(s)} {sign} c.{column(s)}" for s in STATUSES)
    return (
        f"UPDATE organizations o SET {sets} FROM ({per_organization(table)}) c "
        "WHERE o.id = c.organization_id;"
    )


# Inserts and deletes count once per statement, from its transition table: a bulk insert
# would otherwise write the organization's row once per row (a million row versions). A
# status move is one row at a time in Coffer, so it has a row trigger, which PostgreSQL
# skips without calling it when the status stays (its WHEN clause).
POSTGRESQL_FUNCTIONS = (
    f"""CREATE FUNCTION files_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply("+", "new_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION files_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {apply("-", "old_rows")}
      RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION files_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE organizations SET
        {both("::int")}
      WHERE id = NEW.organization_id;
      RETURN NULL;
    END $$""",
)


POSTGRESQL_TRIGGERS = (
    "CREATE TRIGGER files_count_insert AFTER INSERT ON files "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION files_count_insert()",
    "CREATE TRIGGER files_count_delete AFTER DELETE ON files "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION files_count_delete()",
    "CREATE TRIGGER files_count_update AFTER UPDATE OF status ON files FOR EACH ROW "
    "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION files_count_update()",
)


def upgrade():
    with op.batch_alter_table("organizations", recreate="never") as batch:
        for status in STATUSES:
            batch.add_column(
                sa.Column(column(status), sa.BigInteger(), nullable=False, server_default="0")
            )
    for status in STATUSES:
        op.execute(
            f"UPDATE organizations SET {column(status)} = (SELECT count(*) FROM files "
            f"WHERE files.organization_id = organizations.id AND files.status = '{status}')"
        )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_FUNCTIONS + POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in ("files_count_insert", "files_count_delete", "files_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON files")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in ("files_count_insert", "files_count_delete", "files_count_status"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("organizations", recreate="never") as batch:
        for status in STATUSES:
            batch.drop_column(column(status))
