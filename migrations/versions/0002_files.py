"""Files and their validation state.

Revision ID: 0002_files
Revises: 0001_identity
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_files"
down_revision = "0001_identity"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_path", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("bytes_stored", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    # Listing an organization's files newest first, with and without a status filter.
    op.create_index("ix_files_org_uploaded", "files", ["organization_id", "uploaded_at", "id"])
    op.create_index(
        "ix_files_org_status_uploaded", "files", ["organization_id", "status", "uploaded_at", "id"]
    )


def downgrade():
    op.drop_table("files")
