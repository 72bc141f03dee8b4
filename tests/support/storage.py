"""The run's storage backend, and checks on what the storage holds against what the
database says it holds, through the storage interface so they hold on every backend."""

from __future__ import annotations

import os

from flask import Flask

from app.extensions import db as _db
from app.files.previews import owner_of
from app.models import File, FileVersion
from app.storage import get_storage

# The storage backend of the whole run: `STORAGE_BACKEND=s3 make test` runs every test
# on a real S3 server (SeaweedFS), each app under a prefix of its own.
STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "").strip().lower() or "local"


def stored_objects(flask_app: Flask) -> dict[str, int]:
    """Every stored object of the app's backend (in-flight uploads aside): key -> size."""
    with flask_app.app_context():
        return {obj.key: obj.size for obj in get_storage().objects()}


def pending_uploads(flask_app: Flask) -> list[str]:
    """The keys of uploads begun and neither finished nor aborted."""
    with flask_app.app_context():
        return [obj.key for obj in get_storage().pending_uploads()]


def stored_bytes(flask_app: Flask, key: str) -> bytes:
    """The bytes stored under a key, read through the app's backend."""
    with flask_app.app_context(), get_storage().open(key) as handle:
        return handle.read()


def replace_stored_bytes(flask_app: Flask, key: str, data: bytes) -> None:
    """Put other bytes under a key through the app's backend, as a store that changed or
    corrupted an object would leave it."""
    with flask_app.app_context():
        upload = get_storage().begin_upload(key)
        upload.write(data)
        upload.finish()


def stored_key(flask_app: Flask, file_id: str) -> str:
    """The key of a file's bytes (its per-file folder holds exactly one object, besides
    its previews)."""
    (key,) = [
        key
        for key in stored_objects(flask_app)
        if key.split("/")[1:2] == [file_id] and owner_of(key) is None
    ]
    return key


def check_storage_consistent(flask_app: Flask) -> None:
    """No stored object without its row (a preview image without its content's), no row
    without its object, no upload left."""
    with flask_app.app_context():
        rows = _db.session.scalars(_db.select(File).where(File.bytes_stored.is_(True))).all()
        versions = _db.session.scalars(
            _db.select(FileVersion.file_path).where(FileVersion.bytes_stored.is_(True))
        ).all()
        expected = {row.file_path for row in rows} | set(versions)
        _db.session.remove()
    every = set(stored_objects(flask_app))
    stray_previews = {key for key in every if owner_of(key) not in (None, *expected)}
    assert not stray_previews, f"previews left without their content: {stray_previews}"
    stored = {key for key in every if owner_of(key) is None}
    assert stored == expected, (
        f"storage and rows disagree: only stored {stored - expected}, "
        f"only in rows {expected - stored}"
    )
    left = pending_uploads(flask_app)
    assert not left, f"unfinished uploads left behind: {left}"
