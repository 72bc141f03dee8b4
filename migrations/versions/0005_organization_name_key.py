"""Organization names compare as NFKC case-folded text in every script, on every database.

The unique index was on lower(name): SQLite's lower() folds ASCII letters only, and no
database's lower() folds "ß" to "ss". Existing names that now clash are not merged or
renamed here: the upgrade stops and names them, for an operator to rename one.

Revision ID: 0005_organization_name_key
Revises: 0004_files_status_index
Create Date: 2026-12-01
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0005_organization_name_key"
down_revision = "0004_files_status_index"
branch_labels = None
depends_on = None

BATCH = {"recreate": "never"}


def name_key_of(name):
    # A copy of app.models.name_key_of as it was when this migration was written: a
    # migration must give the same result whatever the application code becomes.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def upgrade():
    connection = op.get_bind()
    organizations = sa.table(
        "organizations",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
    )
    rows = connection.execute(sa.select(organizations.c.id, organizations.c.name)).all()
    by_key = {}
    for org_id, name in rows:
        by_key.setdefault(name_key_of(name), []).append((org_id, name))
    clashes = [group for group in by_key.values() if len(group) > 1]
    if clashes:
        listed = "; ".join(
            " and ".join(f"{name!r} (id {org_id})" for org_id, name in group) for group in clashes
        )
        raise RuntimeError(
            "organization names that differ only in case or Unicode form must be made "
            f"distinct before this upgrade: {listed}. Rename all but one of each "
            "(UPDATE organizations SET name = '...' WHERE id = ...), then upgrade again."
        )
    # Checked before any change: SQLite's DDL is not transactional, so a refusal must
    # leave the schema as it found it.
    with op.batch_alter_table("organizations", **BATCH) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=400), nullable=True))
    for key, group in by_key.items():
        connection.execute(
            organizations.update()
            .where(organizations.c.id == group[0][0])
            .values(name_key=key)
        )
    if connection.dialect.name != "sqlite":
        # SQLite cannot add NOT NULL to a column in place; Coffer always sets it.
        op.alter_column("organizations", "name_key", nullable=False)
    op.drop_index("uq_organizations_name_lower", table_name="organizations")
    op.create_index("uq_organizations_name_key", "organizations", ["name_key"], unique=True)


def downgrade():
    op.drop_index("uq_organizations_name_key", table_name="organizations")
    op.create_index(
        "uq_organizations_name_lower", "organizations", [sa.text("lower(name)")], unique=True
    )
    with op.batch_alter_table("organizations", **BATCH) as batch_op:
        batch_op.drop_column("name_key")
