"""Upload-only links (file requests): a secret URL where anyone drops files into a folder.

- `file_requests`: the link's organization, folder (NULL: the top level; the link goes
  with its folder), creator, the SHA-256 of its secret (the secret itself is shown once),
  an optional message for the visitor, its expiry, `max_files` (NULL: no limit) and
  `files_received`, raised by one conditional UPDATE per file taken.
- `files.uploaded_via_request` and `resumable_uploads.uploaded_via_request`: the link a
  file (or an unfinished resumable upload) came through; NULL once the link is revoked.

Revision ID: 0017_file_requests
Revises: 0016_activity
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_file_requests"
down_revision = "0016_activity"
branch_labels = None
depends_on = None

CARRIERS = ("files", "resumable_uploads")
COLUMN = "uploaded_via_request"


def upgrade():
    op.create_table(
        "file_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "folder_id",
            sa.String(length=36),
            sa.ForeignKey("folders.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "created_by",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("secret_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("message", sa.String(length=1000), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("max_files", sa.Integer(), nullable=True),
        sa.Column("files_received", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_file_requests_org", "file_requests", ["organization_id", "id"])
    op.create_index("ix_file_requests_folder_id", "file_requests", ["folder_id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in CARRIERS:
        if sqlite:
            # SQLite's ADD COLUMN takes the reference inline (no ALTER TABLE ADD CONSTRAINT),
            # and never the batch copy, whose DROP TABLE would cascade with foreign keys on.
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN {COLUMN} INTEGER "
                "REFERENCES file_requests(id) ON DELETE SET NULL"
            )
        else:
            op.add_column(table, sa.Column(COLUMN, sa.Integer(), nullable=True))
            op.create_foreign_key(
                f"fk_{table}_{COLUMN}",
                table,
                "file_requests",
                [COLUMN],
                ["id"],
                ondelete="SET NULL",
            )
        op.create_index(f"ix_{table}_{COLUMN}", table, [COLUMN])


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in CARRIERS:
        op.drop_index(f"ix_{table}_{COLUMN}", table_name=table)
        if not sqlite:
            op.drop_constraint(f"fk_{table}_{COLUMN}", table, type_="foreignkey")
        op.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")
    op.drop_table("file_requests")
