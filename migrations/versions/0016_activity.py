"""The activity record: who did what, to what, from where, and when.

One row per event, written in the transaction of the change it records. The actor is kept
by kind (a user by session, an API token, a share link, an upload-only link, or the system)
with its id, and the user behind it (`actor_user_id`, for filters and the email shown); the
target by kind, id and its name at the time (so a deleted file's events still say what it
was). Indexes serve the newest-first pages of the organization's record, by type, by person
and by file, and the retention sweep.

Revision ID: 0016_activity
Revises: 0015_team_administration
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_activity"
down_revision = "0015_team_administration"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "activity_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        # No foreign key: the record outlives the users it names (their email is kept).
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sa.String(length=254), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("target_kind", sa.String(length=12), nullable=True),
        sa.Column("target_id", sa.String(length=36), nullable=True),
        sa.Column("target_name", sa.String(length=255), nullable=True),
        sa.Column("file_id", sa.String(length=36), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_activity_org", "activity_events", ["organization_id", "id"])
    op.create_index("ix_activity_org_type", "activity_events", ["organization_id", "type", "id"])
    op.create_index(
        "ix_activity_org_actor", "activity_events", ["organization_id", "actor_user_id", "id"]
    )
    op.create_index("ix_activity_org_file", "activity_events", ["organization_id", "file_id", "id"])
    op.create_index("ix_activity_at", "activity_events", ["at"])


def downgrade():
    op.drop_table("activity_events")
