"""Checks on what the storage holds against what the database says it holds."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.extensions import db as _db
from app.models import File


def check_storage_consistent(flask_app: Flask) -> None:
    """No bytes on disk without their row, no row without its bytes, no temp file left."""
    root = Path(flask_app.config["UPLOAD_FOLDER"])
    with flask_app.app_context():
        rows = _db.session.scalars(_db.select(File).where(File.bytes_stored.is_(True))).all()
        expected = {str(root / row.file_path) for row in rows}
        _db.session.remove()
    on_disk = set()
    temp_left = []
    if root.exists():
        on_disk = {str(p) for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts}
        temp_left = list((root / ".tmp").glob("*"))
    assert on_disk == expected, (
        f"disk and rows disagree: only on disk {on_disk - expected}, "
        f"only in rows {expected - on_disk}"
    )
    assert not temp_left, f"temporary files left behind: {temp_left}"
