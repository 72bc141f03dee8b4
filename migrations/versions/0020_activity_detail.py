"""An event's detail: what else it says, such as why a file failed validation.

Revision ID: 0020_activity_detail
Revises: 0019_previews
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_activity_detail"
down_revision = "0019_previews"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both databases: a batch copy of a record of millions of rows
    # would take minutes on SQLite.
    op.add_column("activity_events", sa.Column("detail", sa.String(length=255), nullable=True))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("activity_events", "detail")
    else:
        # SQLite 3.35+ drops a plain column in place (no rebuild).
        op.execute("ALTER TABLE activity_events DROP COLUMN detail")
