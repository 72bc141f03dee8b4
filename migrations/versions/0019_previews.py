"""Previews: whether a file's content (and each kept version's) has its small and large
preview images stored beside its bytes (`<file_path>.preview/small.webp`, `large.webp`).

- `files.preview` and `file_versions.preview`: false until the previews job has stored both
  images of that content; a promotion carries the flag with the content, as it carries
  `file_path`.

Revision ID: 0019_previews
Revises: 0018_webdav
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_previews"
down_revision = "0018_webdav"
branch_labels = None
depends_on = None

CARRIERS = ("files", "file_versions")


def upgrade():
    for table in CARRIERS:
        op.add_column(
            table, sa.Column("preview", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in CARRIERS:
        if sqlite:
            # SQLite (3.35+) drops a plain column in place; never the batch copy, whose
            # DROP TABLE would cascade with foreign keys on.
            op.execute(f"ALTER TABLE {table} DROP COLUMN preview")
        else:
            op.drop_column(table, "preview")
