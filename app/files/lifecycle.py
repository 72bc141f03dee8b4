"""A file's life after intake: its status moves (validation's claims and verdicts) and its
removal for good. Nothing else writes `status` or removes a file."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, or_, select, update

from ..database import write_transaction
from ..extensions import db
from ..models import File, FileStatus, utcnow
from ..services import webhooks
from ..services.tenancy import in_organization, scoped
from ..storage import get_storage
from .ledger import OVER_QUOTA_MESSAGE, within_quota

log = logging.getLogger(__name__)

# The moves validation may make, and from where; nothing else writes `status`.
ALLOWED_MOVES: dict[FileStatus, tuple[FileStatus, ...]] = {
    # An operator's `jobs requeue-failed` sends a failed file back, and so does renaming a
    # file that failed only on its extension (app/files/placement.py).
    FileStatus.PENDING: (FileStatus.FAILED,),
    FileStatus.PROCESSING: (FileStatus.PENDING, FileStatus.PROCESSING),
    FileStatus.READY: (FileStatus.PROCESSING,),
    FileStatus.FAILED: (FileStatus.PENDING, FileStatus.PROCESSING),
}
FINAL_STATUSES = (FileStatus.READY, FileStatus.FAILED)
# Rows per DELETE when many files go at once: well below every database's bound on
# parameters.
REMOVE_BATCH = 500

# ---- deletion ------------------------------------------------------------------------
# A file is removed for good only from the trash (app/files/trash.py): by a user's "delete
# forever", an emptied trash, or the sweep's purge. Deleting a file moves it to the trash.


@dataclass(frozen=True)
class Removed:
    """A file whose row goes: where its bytes are, and what its file.deleted tells."""

    file_path: str
    snapshot: dict[str, Any]


def removals(
    organization_id: int, rows: list[File], paths: dict[str, str] | None = None
) -> list[Removed]:
    """What removing these rows leaves to do (bytes, events), read while they exist.
    `paths` may give each file's path (a folder's removal knows them)."""
    del organization_id  # every row here is the organization's
    # Read while the rows exist: the file.deleted event tells what was deleted.
    return [
        Removed(
            row.file_path,
            webhooks.file_snapshot(row, None if paths is None else paths[row.id]),
        )
        for row in rows
    ]


def delete_rows(organization_id: int, rows: list[File]) -> None:
    """Delete the rows, inside the caller's write transaction."""
    ids = [row.id for row in rows]
    for start in range(0, len(ids), REMOVE_BATCH):
        # Their share links go with them (ON DELETE CASCADE), their bytes and themselves
        # leave the organization's usage (the database's triggers).
        db.session.execute(
            delete(File)
            .where(
                in_organization(File, organization_id),
                File.id.in_(ids[start : start + REMOVE_BATCH]),
            )
            .execution_options(synchronize_session=False)
        )
    for row in rows:
        if row in db.session:
            # Gone from the database: the session must not look for them again.
            db.session.expunge(row)


def remove_files(
    organization_id: int, rows: list[File], paths: dict[str, str] | None = None
) -> list[Removed]:
    """Delete the rows, inside the caller's write transaction; `after_removal` finishes
    once it commits. `paths` may give each file's path (a folder's removal knows them)."""
    removed = removals(organization_id, rows, paths)
    delete_rows(organization_id, rows)
    return removed


def remove_bytes(removed: list[Removed]) -> None:
    """Remove the bytes of removed files (a missing one is no error: removal is idempotent)."""
    # One call for them all: a backend with a bulk delete (S3) removes 1,000 a request.
    get_storage().remove_many([item.file_path for item in removed])


def announce_removal(organization_id: int, removed: list[Removed]) -> None:
    """The file.deleted event of each removed file, once its row is gone."""
    webhooks.emit_each(webhooks.FILE_DELETED, organization_id, [item.snapshot for item in removed])


def after_removal(organization_id: int, removed: list[Removed]) -> None:
    """What follows removed rows' commit: their bytes go, and their file.deleted events."""
    # After the commit: a crash here leaves bytes without a row, which
    # `manage.py storage check --fix` removes; never a row without bytes. (The trash's
    # purge removes the bytes first instead: its rows, marked, are finished by the next
    # sweep.)
    remove_bytes(removed)
    announce_removal(organization_id, removed)


# ---- status moves --------------------------------------------------------------------


def move(
    organization_id: int,
    file_id: str,
    to: FileStatus,
    *,
    keep_bytes: bool = False,
    **values: Any,
) -> bool:
    """Move a file to `to` if its current status allows it; False when it did not move.

    The one place `status` changes: one conditional UPDATE, so two runs of a job can
    never both make the same move. A file failed for its content loses its bytes here
    when DELETE_FAILED_FILES is set; `keep_bytes` (validation gave up, the content was
    never judged) keeps them, so `jobs requeue-failed` can still save the file.
    """
    return _move(organization_id, file_id, to, values, keep_bytes=keep_bytes) is not None


@dataclass(frozen=True)
class Claim:
    """What validation needs of a file it has moved to `processing`."""

    file_path: str
    size: int
    filename: str
    # The digest recorded as the bytes arrived (a resumable upload's), or None.
    sha256: str | None


def claim_for_validation(organization_id: int, file_id: str) -> Claim | None:
    """Move a file to `processing` and read what validation needs, in one statement.

    None when the file is gone or already has its verdict.
    """
    moved = _move(
        organization_id,
        file_id,
        FileStatus.PROCESSING,
        {},
        returning=(File.file_path, File.size, File.filename, File.sha256),
    )
    return Claim(*moved[1]) if moved is not None else None


def record_verdict(organization_id: int, file_id: str, **values: Any) -> FileStatus | None:
    """Mark a validated file `ready`, or `failed` if its organization is now over quota.

    The organization can be over its quota only when the quota was lowered after the
    upload. The quota is read and the verdict written in one transaction. Returns the
    status recorded, or None when the file was no longer in `processing` (deleted).
    """
    moved = _move(organization_id, file_id, FileStatus.READY, values, quota_gate=True)
    return moved[0] if moved is not None else None


def status_of(organization_id: int, file_id: str) -> str | None:
    """A file's current status, or None when it does not exist."""
    return db.session.scalar(
        scoped(File, organization_id).with_only_columns(File.status).where(File.id == file_id)
    )


def _move(
    organization_id: int,
    file_id: str,
    to: FileStatus,
    values: dict[str, Any],
    *,
    returning: tuple[Any, ...] = (),
    quota_gate: bool = False,
    keep_bytes: bool = False,
) -> tuple[FileStatus, tuple[Any, ...]] | None:
    """The conditional UPDATE behind every move, in its own transaction.

    Returns the status moved to and the `returning` columns, or None when nothing moved.
    `quota_gate` turns the move into `failed` when the organization is over its quota.
    """
    dropped: str | None = None
    with write_transaction() as session:
        if quota_gate and not within_quota(organization_id):
            to, values = FileStatus.FAILED, {"error_message": OVER_QUOTA_MESSAGE}
        if to in FINAL_STATUSES:
            values["processed_at"] = utcnow()
        elif to is FileStatus.PENDING:
            # Sent back for another run: no verdict stands until it ends.
            values["processed_at"] = None
        statement = _move_statement(to, tuple(values), returning)
        params = {"moved_org": organization_id, "moved_file": file_id}
        params.update((f"new_{column}", value) for column, value in values.items())
        if returning:
            found = session.execute(statement, params).first()
            moved = tuple(found) if found is not None else None
        else:
            rowcount = session.execute(statement, params).rowcount  # type: ignore[attr-defined]
            moved = () if rowcount == 1 else None
        if moved is None:
            return None
        if to is FileStatus.FAILED and not keep_bytes and current_app.config["DELETE_FAILED_FILES"]:
            dropped = _drop_bytes(organization_id, file_id)
    if dropped is not None:
        get_storage().remove(dropped)
    # The job logs each verdict; every move is there for debugging.
    log.debug("file %s is %s", file_id, to, extra={"file_id": file_id, "status": str(to)})
    return to, moved


@functools.cache
def _move_statement(to: FileStatus, columns: tuple[str, ...], returning: tuple[Any, ...]) -> Any:
    """The UPDATE for one kind of move, built once per kind (docs/PERFORMANCE.md says why)."""
    statement = (
        update(File)
        .where(
            in_organization(File, bindparam("moved_org")),
            File.id == bindparam("moved_file"),
            # Equalities rather than IN: an IN list is re-rendered on every run.
            or_(*(File.status == status for status in ALLOWED_MOVES[to])),
        )
        .values(status=to, **{column: bindparam(f"new_{column}") for column in columns})
        # Nothing in the session holds the row: no need to look for it there.
        .execution_options(synchronize_session=False)
    )
    return statement.returning(*returning) if returning else statement


def _drop_bytes(organization_id: int, file_id: str) -> str | None:
    """Mark a file's bytes gone, which frees their quota (the database's trigger); returns
    the path to remove."""
    row = db.session.execute(
        select(File.file_path, File.bytes_stored).where(
            in_organization(File, organization_id), File.id == file_id
        )
    ).one()
    if not row.bytes_stored:
        return None
    db.session.execute(
        update(File)
        .where(in_organization(File, organization_id), File.id == file_id)
        .values(bytes_stored=False)
    )
    return str(row.file_path)
