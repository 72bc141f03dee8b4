"""Users' session generation, raised by every deactivation.

Revision ID: 0003_session_generation
Revises: 0002_files
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_session_generation"
down_revision = "0002_files"
branch_labels = None
depends_on = None

# Plain ALTER TABLE on SQLite too (ADD COLUMN; DROP COLUMN needs SQLite 3.35+): never the
# batch copy-and-rename, whose DROP TABLE users, with foreign keys on, would cascade to
# the users' API tokens and clear invites' and files' references to them.
BATCH = {"recreate": "never"}


def upgrade():
    with op.batch_alter_table("users", **BATCH) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("users", **BATCH) as batch_op:
        batch_op.drop_column("session_generation")
