"""Team administration: invites with a role, API tokens with access and expiry, password
reset links.

- `invites.role`: the role the invitee joins with (`member` for every invite so far).
- `api_tokens.access` (`read` or `write`; `write` for every token so far) and
  `api_tokens.expires_at` (NULL: never expires, as every token so far).
- `password_resets`: an admin's single-use link for a user to set a new password; only the
  SHA-256 of its code is stored.

Revision ID: 0015_team_administration
Revises: 0014_trash_versions
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_team_administration"
down_revision = "0014_trash_versions"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "invites",
        sa.Column("role", sa.String(length=10), nullable=False, server_default="member"),
    )
    op.add_column(
        "api_tokens",
        sa.Column("access", sa.String(length=5), nullable=False, server_default="write"),
    )
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(), nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        # As every table with an integer id since 0009: an id is never given again.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_password_resets_organization_id", "password_resets", ["organization_id"])
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"])


def downgrade():
    connection = op.get_bind()
    op.drop_table("password_resets")
    for table, name in (
        ("api_tokens", "expires_at"),
        ("api_tokens", "access"),
        ("invites", "role"),
    ):
        if connection.dialect.name == "postgresql":
            op.drop_column(table, name)
        else:
            # SQLite 3.35+ drops a plain column in place (no rebuild).
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
