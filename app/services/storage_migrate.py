"""`manage.py storage migrate`: copy every stored file to another backend, verified."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select, union_all

from ..extensions import db
from ..models import File, FileVersion
from ..storage import Storage

log = logging.getLogger(__name__)

COPY_CHUNK = 8 * 1024 * 1024


@dataclass
class MigrationReport:
    """What one run copied, found already copied, and could not copy."""

    source: str
    target: str
    copied: int = 0
    already_there: int = 0
    copied_bytes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    vanished: int = 0


def _digest(reader: IO[bytes]) -> tuple[str, int]:
    """SHA-256 and length of everything a reader gives."""
    digest = hashlib.sha256()
    size = 0
    with reader:
        while chunk := reader.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy(source: Storage, target: Storage, key: str) -> str:
    """Stream one object from source to target; returns the SHA-256 of what was read."""
    upload = target.begin_upload(key)
    digest = hashlib.sha256()
    try:
        with source.open(key) as reader:
            while chunk := reader.read(COPY_CHUNK):
                digest.update(chunk)
                upload.write(chunk)
        upload.finish()
    except BaseException:
        upload.abort()
        raise
    return digest.hexdigest()


def migrate(
    source: Storage,
    target: Storage,
    progress: Callable[[int, int], Any] | None = None,
) -> MigrationReport:
    """Copy every file whose bytes are stored (every version of it) from `source` to
    `target`, under the same key.

    Each copy is read back from the target and its SHA-256 compared with the row's (or,
    for a file not yet validated, with the source's). A copy already in the target that
    verifies is left as it is, so a run can be repeated after an interruption; the source
    is never changed, so running services keep serving from it meanwhile.
    """
    report = MigrationReport(source=source.describe(), target=target.describe())
    stored = union_all(
        # Cross-tenant on purpose: an operator's copy of every organization's files.
        select(File.id, File.file_path, File.size, File.sha256, File.uploaded_at).where(
            File.bytes_stored.is_(True)
        ),
        # The versions files do not answer with are reported under their file's id.
        select(
            FileVersion.file_id,
            FileVersion.file_path,
            FileVersion.size,
            FileVersion.sha256,
            FileVersion.uploaded_at,
        ).where(FileVersion.bytes_stored.is_(True)),
    ).subquery()
    rows = db.session.execute(
        select(stored.c[0], stored.c[1], stored.c[2], stored.c[3]).order_by(
            stored.c[4], stored.c[0]
        )
    ).all()
    db.session.rollback()
    for done, (file_id, key, size, sha256) in enumerate(rows, start=1):
        try:
            if target.size(key) == size and _digest(target.open(key)) == (
                sha256 or _digest(source.open(key))[0],
                size,
            ):
                report.already_there += 1
                continue
            read_sha = _copy(source, target, key)
            expected = sha256 or read_sha
            copied_sha, copied_size = _digest(target.open(key))
            if (copied_sha, copied_size) != (expected, size):
                target.remove(key)
                report.failures.append(
                    (file_id, f"the copy does not match ({copied_size} bytes, sha256 {copied_sha})")
                )
                continue
            report.copied += 1
            report.copied_bytes += size
        except FileNotFoundError:
            # Deleted since the rows were read: nothing to copy.
            if _still_stored(key):
                report.failures.append((file_id, f"{key} is missing from {report.source}"))
            else:
                report.vanished += 1
        except Exception as exc:  # noqa: BLE001 - reported per file; the run goes on
            log.warning("could not copy file %s: %s", file_id, exc, extra={"file_id": file_id})
            report.failures.append((file_id, f"{type(exc).__name__}: {exc}"))
        finally:
            if progress is not None:
                progress(done, len(rows))
    return report


def _still_stored(key: str) -> bool:
    """Whether a row (a file's, or another version's) still says its bytes are stored
    under this key."""
    found = db.session.scalar(
        select(File.id).where(File.file_path == key, File.bytes_stored.is_(True))
    ) or db.session.scalar(
        select(FileVersion.id).where(
            FileVersion.file_path == key, FileVersion.bytes_stored.is_(True)
        )
    )
    db.session.rollback()
    return found is not None
