"""Resumable (tus) uploads, and the bytes they hold against the quota.

Revision ID: 0006_resumable_uploads
Revises: 0005_organization_name_key
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_resumable_uploads"
down_revision = "0005_organization_name_key"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.add_column(
            sa.Column("reserved_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "resumable_uploads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uploaded_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("upload_metadata", sa.Text(), nullable=False),
        sa.Column("file_path", sa.String(512), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("storage_state", sa.Text(), nullable=False),
        sa.Column("hash_state", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime()),
        sa.Column("lock_token", sa.String(32)),
        sa.Column("locked_until", sa.DateTime()),
    )
    op.create_index(
        "ix_resumable_uploads_organization_id", "resumable_uploads", ["organization_id"]
    )
    op.create_index("ix_resumable_uploads_expires_at", "resumable_uploads", ["expires_at"])


def downgrade():
    op.drop_index("ix_resumable_uploads_expires_at", table_name="resumable_uploads")
    op.drop_index("ix_resumable_uploads_organization_id", table_name="resumable_uploads")
    op.drop_table("resumable_uploads")
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.drop_column("reserved_bytes")
