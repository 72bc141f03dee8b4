"""Folders: every file lives in one (the top level, `root`, is NULL), names unique per folder.

A `folders` table (a name in a parent folder); on `files` the folder and the compared form
of the name (`name_key`: NFKC, case-folded, as organization names are compared); on
`resumable_uploads` the folder its file is to be made in and `on_conflict`. One
unique index per table holds a name once per place; files and folders share a place's names,
which the application checks under the organization's lock (app/files/names.py).

Existing files land at the top level with their names. Where two or more already share a
name there (compared as above), the oldest keeps it and the others are renamed as an upload
with `on_conflict=rename` would be (`report.pdf` becomes `report (2).pdf`, or the first number
no file holds); a file whose name was already its own keeps it. The migration logs how many.

`name_key` may be NULL: a row written by SQL by hand, or by a host still running the previous
release during a rolling upgrade, has none (and clashes with nothing) until it is renamed;
Coffer itself always writes it.

Revision ID: 0012_folders
Revises: 0011_usage_counters
Create Date: 2026-12-06
"""

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0012_folders"
down_revision = "0011_usage_counters"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

FILE_PLACE = sa.text("coalesce(folder_id, '')")
FOLDER_PLACE = sa.text("coalesce(parent_id, '')")


# The rules below are the application's at this revision (app/models.py name_key_of,
# app/files/names.py numbered), copied so that later changes there cannot change what this
# revision did.
def name_key_of(name):
    """NFKC, case-folded."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def numbered(name, n):
    """`report.pdf` as its n-th copy: `report (n).pdf`; a name without an extension, or a
    dot file, gets the number at its end."""
    root, dot, extension = name.rpartition(".")
    if dot and root:
        return f"{root} ({n}).{extension}"
    return f"{name} ({n})"


def upgrade():
    op.create_table(
        "folders",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("parent_id", sa.String(length=36), sa.ForeignKey("folders.id"), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("name_key", sa.String(length=1024), nullable=False),
        sa.Column(
            "created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "uq_folders_place", "folders", ["organization_id", FOLDER_PLACE, "name_key"], unique=True
    )
    op.create_index("ix_folders_parent", "folders", ["parent_id"])

    # Plain ADD COLUMNs (no table rebuild on SQLite, which would drop the counting triggers;
    # Alembic adds a column with a foreign key on SQLite only by a rebuild, so SQL here).
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.add_column(
            "files",
            sa.Column("folder_id", sa.String(length=36), sa.ForeignKey("folders.id")),
        )
    else:
        op.execute("ALTER TABLE files ADD COLUMN folder_id VARCHAR(36) REFERENCES folders (id)")
    op.add_column("files", sa.Column("name_key", sa.String(length=1024), nullable=True))
    op.add_column("resumable_uploads", sa.Column("folder_id", sa.String(length=36)))
    op.add_column(
        "resumable_uploads",
        sa.Column("on_conflict", sa.String(length=8), nullable=False, server_default="rename"),
    )

    files = sa.table(
        "files",
        sa.column("id", sa.String),
        sa.column("organization_id", sa.Integer),
        sa.column("filename", sa.String),
        sa.column("name_key", sa.String),
        sa.column("uploaded_at", sa.DateTime),
    )
    rows = connection.execute(
        sa.select(files.c.id, files.c.organization_id, files.c.filename).order_by(
            files.c.organization_id, files.c.uploaded_at, files.c.id
        )
    ).all()
    # First every name that is the first of its kind keeps it, so that no file whose name
    # was already its own is renamed; then the later files of a shared name are numbered.
    taken = set()
    later = []
    for file_id, organization_id, filename in rows:
        key = (organization_id, name_key_of(filename))
        if key in taken:
            later.append((file_id, organization_id, filename))
            continue
        taken.add(key)
        connection.execute(
            files.update().where(files.c.id == file_id).values(name_key=key[1])
        )
    for file_id, organization_id, filename in later:
        n = 2
        while (organization_id, name_key_of(numbered(filename, n))) in taken:
            n += 1
        name = numbered(filename, n)
        taken.add((organization_id, name_key_of(name)))
        connection.execute(
            files.update()
            .where(files.c.id == file_id)
            .values(filename=name, name_key=name_key_of(name))
        )
    renamed = len(later)
    if renamed:
        log.warning(
            "%d file(s) shared a name with an older file at the top level of their "
            "organization and were renamed as `report (2).pdf`",
            renamed,
        )
    op.create_index(
        "uq_files_place", "files", ["organization_id", FILE_PLACE, "name_key"], unique=True
    )
    op.create_index(
        "ix_files_place_uploaded", "files", ["organization_id", FILE_PLACE, "uploaded_at", "id"]
    )
    op.create_index("ix_files_place_size", "files", ["organization_id", FILE_PLACE, "size", "id"])
    op.create_index("ix_files_folder", "files", ["folder_id"])


def downgrade():
    for name in ("ix_files_folder", "ix_files_place_size", "ix_files_place_uploaded", "uq_files_place"):
        op.drop_index(name, table_name="files")
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.drop_column("files", "name_key")
        op.drop_column("files", "folder_id")
    else:
        # SQLite 3.35+ drops a plain column in place; folder_id's REFERENCES clause does not
        # stop it, and no table rebuild drops the counting triggers.
        op.execute("ALTER TABLE files DROP COLUMN name_key")
        op.execute("ALTER TABLE files DROP COLUMN folder_id")
    for column in ("on_conflict", "folder_id"):
        if connection.dialect.name == "postgresql":
            op.drop_column("resumable_uploads", column)
        else:
            op.execute(f"ALTER TABLE resumable_uploads DROP COLUMN {column}")
    op.drop_index("ix_folders_parent", table_name="folders")
    op.drop_index("uq_folders_place", table_name="folders")
    op.drop_table("folders")
