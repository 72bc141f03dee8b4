"""Ids of deleted rows are never handed out again, on SQLite too.

Without AUTOINCREMENT SQLite gives a new row the largest id in use plus one, so the id of
the last row deleted came back: a retry queued for a deleted webhook went to the next
webhook created (signed with its secret), and a revoked token's or link's id named another.
Every table with an integer primary key is rebuilt here WITH AUTOINCREMENT (alembic's batch
copy: same columns, indexes, constraints and rows), and SQLite then remembers the largest
id it ever gave out. PostgreSQL's sequences never go back: nothing changes there.

SQLite starts counting from the largest id each table holds at the upgrade: the ids of
rows deleted above it before the upgrade can still come once more. Deliveries already
queued are safe from that too: a delivery names its endpoint's creation time as well as
its id (app/services/webhooks/delivery.py, webhook_for_delivery).

Revision ID: 0009_sqlite_autoincrement
Revises: 0008_file_status_counts
Create Date: 2026-12-06
"""

from alembic import op

revision = "0009_sqlite_autoincrement"
down_revision = "0008_file_status_counts"
branch_labels = None
depends_on = None

# Every table with an integer primary key at 0008 (files and resumable_uploads have UUIDs).
TABLES = (
    "organizations",
    "users",
    "invites",
    "api_tokens",
    "share_links",
    "webhooks",
    "webhook_deliveries",
)


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        rebuild(autoincrement=True)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        rebuild(autoincrement=False)


def rebuild(autoincrement):
    """Copy each table into a new one with (or without) AUTOINCREMENT, keeping everything."""
    raw = op.get_bind().connection.dbapi_connection
    # A rebuild drops the old table. With foreign keys on, dropping organizations or users
    # would first delete (ON DELETE CASCADE) or clear (SET NULL) every row that refers to
    # them, and the pragma is ignored inside a transaction: the revisions before this one
    # are committed, and the rebuild runs in a transaction of its own with the checks off,
    # checked as a whole before it commits. Should the process stop before alembic records
    # this revision, running it again rebuilds the tables again, to the same result.
    restart(raw, "COMMIT", foreign_keys=False)
    try:
        # SQLite checks the whole schema when a table is renamed: the 0008 triggers on
        # files, which update organizations, would name a missing table mid-way. Every
        # trigger is dropped and made again exactly as it was.
        triggers = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        ).fetchall()
        for name, _sql in triggers:
            raw.execute(f'DROP TRIGGER "{name}"')
        for table in TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
            ):
                pass
        for _name, sql in triggers:
            raw.execute(sql)
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"rows refer to rows that do not exist: {broken[:10]}")
    except BaseException:
        restart(raw, "ROLLBACK", foreign_keys=True)
        raise
    restart(raw, "COMMIT", foreign_keys=True)


def restart(raw, end, foreign_keys):
    """End the open transaction with `end`, switch the foreign key checks, and begin the
    transaction that alembic goes on in (and commits or rolls back)."""
    if raw.in_transaction:
        raw.execute(end)
    raw.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    raw.execute("BEGIN")
