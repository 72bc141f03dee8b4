"""An index on files' status, so the sweep for unfinished files reads only those.

Revision ID: 0004_files_status_index
Revises: 0003_session_generation
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004_files_status_index"
down_revision = "0003_session_generation"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_files_status", "files", ["status"])


def downgrade():
    op.drop_index("ix_files_status", table_name="files")
