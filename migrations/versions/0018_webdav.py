"""WebDAV's dead properties: what clients set with PROPPATCH, by organization and path.

Revision ID: 0018_webdav
Revises: 0017_file_requests
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_webdav"
down_revision = "0017_file_requests"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dav_properties",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_index(
        "uq_dav_properties", "dav_properties", ["organization_id", "url", "name"], unique=True
    )


def downgrade():
    op.drop_table("dav_properties")
