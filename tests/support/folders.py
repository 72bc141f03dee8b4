"""Folders made for tests directly in the database, until the folder endpoints exist; the
tests call these helpers only, so they can switch to the API in one place."""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy import select, update

from app.extensions import db
from app.models import File, Folder, name_key_of


def organization_of(app: Flask, file_id: str) -> int:
    """The organization a file belongs to."""
    with app.app_context():
        organization_id = db.session.scalar(select(File.organization_id).where(File.id == file_id))
    assert organization_id is not None
    return organization_id


def make_folder(app: Flask, organization_id: int, name: str, parent_id: str | None = None) -> str:
    """A new folder's id, in `parent_id` (None: the top level)."""
    folder_id = str(uuid.uuid4())
    with app.app_context():
        db.session.add(
            Folder(
                id=folder_id,
                organization_id=organization_id,
                parent_id=parent_id,
                name=name,
                name_key=name_key_of(name),
            )
        )
        db.session.commit()
    return folder_id


def put_in(app: Flask, file_id: str, folder_id: str | None) -> None:
    """Move a file into a folder (None: the top level), its name kept."""
    with app.app_context():
        db.session.execute(update(File).where(File.id == file_id).values(folder_id=folder_id))
        db.session.commit()


def rename(app: Flask, file_id: str, filename: str) -> None:
    """Give a file another name, as a rename would (a name Coffer refuses at upload too)."""
    with app.app_context():
        db.session.execute(
            update(File)
            .where(File.id == file_id)
            .values(filename=filename, name_key=name_key_of(filename))
        )
        db.session.commit()
