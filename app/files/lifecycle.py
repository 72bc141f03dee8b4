"""A file's life after intake: its status moves (validation's claims and verdicts), its
versions' moves and the promotion of a newer ready version, and its removal for good.
Nothing else writes `status` or removes a file or a version."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, insert, or_, select, update

from ..database import write_transaction
from ..extensions import db
from ..models import File, FileStatus, FileVersion, Organization, utcnow
from ..services import activity, webhooks
from ..services.queue import enqueue_validation
from ..services.tenancy import in_organization, scoped
from ..storage import get_storage
from . import retention
from .ledger import OVER_QUOTA_MESSAGE, within_quota
from .previews import keys_of

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
    """A file whose row goes: where its bytes are (those of every other version too), and
    what its file.deleted tells."""

    file_path: str
    snapshot: dict[str, Any]
    version_paths: tuple[str, ...] = field(default=())


def removals(
    organization_id: int, rows: list[File], paths: dict[str, str] | None = None
) -> list[Removed]:
    """What removing these rows leaves to do (bytes, every version's too; events), read
    while they exist. `paths` may give each file's path (a folder's removal knows them)."""
    ids = [row.id for row in rows]
    # Read while the rows exist: their versions go with them (ON DELETE CASCADE), their
    # bytes when the caller removes them.
    version_paths = stored_version_paths(organization_id, ids)
    # Read while the rows exist: the file.deleted event tells what was deleted.
    return [
        Removed(
            row.file_path,
            webhooks.file_snapshot(row, None if paths is None else paths[row.id]),
            tuple(version_paths.get(row.id, ())),
        )
        for row in rows
    ]


def delete_rows(organization_id: int, rows: list[File]) -> set[str]:
    """Delete the rows, inside the caller's write transaction (their versions' rows go
    with them, ON DELETE CASCADE); the ids of those this deleted (another removal may have
    taken some first)."""
    ids = [row.id for row in rows]
    deleted: set[str] = set()
    for start in range(0, len(ids), REMOVE_BATCH):
        # Their share links go with them (ON DELETE CASCADE), their bytes and themselves
        # leave the organization's usage (the database's triggers).
        deleted.update(
            db.session.scalars(
                delete(File)
                .where(
                    in_organization(File, organization_id),
                    File.id.in_(ids[start : start + REMOVE_BATCH]),
                )
                .returning(File.id)
                .execution_options(synchronize_session=False)
            )
        )
    for row in rows:
        if row in db.session:
            # Gone from the database: the session must not look for them again.
            db.session.expunge(row)
    return deleted


def remove_files(
    organization_id: int, rows: list[File], paths: dict[str, str] | None = None
) -> list[Removed]:
    """Delete the rows, inside the caller's write transaction; `after_removal` finishes
    once it commits. `paths` may give each file's path (a folder's removal knows them)."""
    removed = removals(organization_id, rows, paths)
    delete_rows(organization_id, rows)
    return removed


def stored_version_paths(organization_id: int, file_ids: list[str]) -> dict[str, list[str]]:
    """Per file, the paths of its other versions' stored bytes (the one it answers with is
    its own `file_path`), read in batches."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(file_ids), REMOVE_BATCH):
        rows = db.session.execute(
            select(FileVersion.file_id, FileVersion.file_path).where(
                in_organization(FileVersion, organization_id),
                FileVersion.file_id.in_(file_ids[start : start + REMOVE_BATCH]),
                FileVersion.bytes_stored.is_(True),
            )
        ).all()
        for file_id, path in rows:
            found.setdefault(file_id, []).append(path)
    return found


def remove_bytes(removed: list[Removed]) -> None:
    """Remove the bytes of removed files, every version's (a missing one is no error:
    removal is idempotent)."""
    # One call for them all: a backend with a bulk delete (S3) removes 1,000 a request.
    # Each content's previews go with its bytes (a missing one is fine, as for the bytes).
    get_storage().remove_many(
        [
            key
            for item in removed
            for path in (item.file_path, *item.version_paths)
            for key in (path, *keys_of(path))
        ]
    )


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

# A row whose status validation moves: a file (the version it answers with), or another
# version of one.
Validated = type[File] | type[FileVersion]


def move(
    organization_id: int,
    file_id: str,
    to: FileStatus,
    *,
    keep_bytes: bool = False,
    model: Validated = File,
    **values: Any,
) -> bool:
    """Move a file (or, with `model=FileVersion`, a version) to `to` if its current status
    allows it; False when it did not move.

    The one place `status` changes: one conditional UPDATE, so two runs of a job can
    never both make the same move. A file failed for its content loses its bytes here
    when DELETE_FAILED_FILES is set; `keep_bytes` (validation gave up, the content was
    never judged) keeps them, so `jobs requeue-failed` can still save the file.
    """
    moved = _move(organization_id, file_id, to, values, model=model, keep_bytes=keep_bytes)
    return moved is not None


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


def claim_version_for_validation(organization_id: int, version_id: str) -> Claim | None:
    """Move a version to `processing` and read what validation needs: its bytes, and the
    name of its file (whose extension its content must match). None when it is gone or
    already has its verdict."""
    moved = _move(
        organization_id,
        version_id,
        FileStatus.PROCESSING,
        {},
        model=FileVersion,
        returning=(FileVersion.file_path, FileVersion.size, FileVersion.file_id),
    )
    if moved is None:
        return None
    file_path, size, file_id = moved[1]
    # A trashed file's versions are judged too: a restore brings them back.
    filename = db.session.scalar(
        select(File.filename).where(in_organization(File, organization_id), File.id == file_id)
    )
    db.session.rollback()
    if filename is None:  # removed in between: its versions went with it
        return None
    return Claim(file_path, size, filename, None)


def record_verdict(organization_id: int, file_id: str, **values: Any) -> FileStatus | None:
    """Mark a validated file `ready`, or `failed` if its organization is now over quota.

    The organization can be over its quota only when the quota was lowered after the
    upload. The quota is read and the verdict written in one transaction. Returns the
    status recorded, or None when the file was no longer in `processing` (deleted).
    """
    moved = _move(organization_id, file_id, FileStatus.READY, values, quota_gate=True)
    return moved[0] if moved is not None else None


@dataclass(frozen=True)
class VersionVerdict:
    """What a version's verdict did: its status, its file, and whether the file now answers
    with it (it was ready and newer than the version the file answered with)."""

    status: FileStatus
    file_id: str
    promoted: bool


def record_version_verdict(
    organization_id: int, version_id: str, **values: Any
) -> VersionVerdict | None:
    """Mark a validated version `ready` (or `failed` when the organization is now over its
    quota) and, when ready and newer than the file's, promote it in the same transaction;
    None when the version was no longer in `processing`."""
    promotion: list[Promotion] = []

    def promote_if_newer(status: FileStatus) -> None:
        if status is FileStatus.READY:
            promotion.append(promote(organization_id, version_id))

    file_id = file_of_version(organization_id, version_id)
    db.session.rollback()
    moved = _move(
        organization_id,
        version_id,
        FileStatus.READY,
        values,
        model=FileVersion,
        quota_gate=True,
        then=promote_if_newer,
    )
    if moved is None or file_id is None:
        return None
    promoted = bool(promotion) and promotion[0].promoted
    if promotion and promotion[0].unjudged is not None:
        # The content the file answered with had no verdict yet: it gets one as a version.
        enqueue_validation(promotion[0].unjudged, organization_id, version=True)
    return VersionVerdict(moved[0], file_id, promoted)


@dataclass(frozen=True)
class Promotion:
    """Whether a file now answers with a version, and the version row its former content
    became when that content still awaits its verdict (to be queued after the commit)."""

    promoted: bool
    unjudged: str | None = None


def promote(organization_id: int, version_id: str) -> Promotion:
    """Make the file answer with this ready version if it is newer than the file's own:
    the file's row takes the version's content and number, and the content it answered
    with becomes a version row. Inside the caller's write transaction (a verdict's, or a
    restore's)."""
    version = db.session.execute(
        select(FileVersion).where(
            in_organization(FileVersion, organization_id), FileVersion.id == version_id
        )
    ).scalar_one()
    current = db.session.execute(
        select(File)
        .where(in_organization(File, organization_id), File.id == version.file_id)
        .with_for_update()
    ).scalar_one_or_none()
    if current is None or version.version <= current.version:
        return Promotion(False)
    judged = current.status in FINAL_STATUSES
    demoted = {
        "id": str(uuid.uuid4()),
        "file_id": current.id,
        "organization_id": organization_id,
        "version": current.version,
        "file_path": current.file_path,
        "size": current.size,
        "mime_type": current.mime_type,
        "sha256": current.sha256,
        "crc32": current.crc32,
        # A run still judging it finds the file moved on and records nothing: the
        # content is judged again as a version.
        "status": current.status if judged else FileStatus.PENDING,
        "error_message": current.error_message,
        "bytes_stored": current.bytes_stored,
        "uploaded_by": current.uploaded_by,
        "uploaded_at": current.uploaded_at,
        "processed_at": current.processed_at if judged else None,
        # Previews belong to their content: they stay beside the bytes that became a version.
        "preview": current.preview,
    }
    content = {
        column: getattr(version, column)
        for column in (
            "file_path",
            "size",
            "mime_type",
            "sha256",
            "crc32",
            "status",
            "error_message",
            "bytes_stored",
            "uploaded_by",
            "uploaded_at",
            "processed_at",
            "version",
            "preview",
        )
    }
    # The usage stays as it was: the triggers take the version's bytes away with its row,
    # add the old content's with the new row, and swap the file's sizes.
    db.session.execute(
        delete(FileVersion)
        .where(FileVersion.id == version.id)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(insert(FileVersion).values(demoted))
    db.session.execute(
        update(File)
        .where(in_organization(File, organization_id), File.id == current.id)
        .values(**content)
        .execution_options(synchronize_session=False)
    )
    db.session.expunge(version)
    db.session.expire(current)
    log.info(
        "file %s answers with version %d",
        current.id,
        content["version"],
        extra={"file_id": current.id},
    )
    return Promotion(True, None if judged else str(demoted["id"]))


def status_of(organization_id: int, file_id: str) -> str | None:
    """A file's current status, or None when it does not exist."""
    return db.session.scalar(
        scoped(File, organization_id).with_only_columns(File.status).where(File.id == file_id)
    )


def file_of_version(organization_id: int, version_id: str) -> str | None:
    """The id of the file a version row belongs to, or None when the row is gone."""
    return db.session.scalar(
        select(FileVersion.file_id).where(
            in_organization(FileVersion, organization_id), FileVersion.id == version_id
        )
    )


def version_status_of(organization_id: int, version_id: str) -> str | None:
    """A version's current status, or None when its row is gone (removed, or its file
    now answers with it)."""
    return db.session.scalar(
        select(FileVersion.status).where(
            in_organization(FileVersion, organization_id), FileVersion.id == version_id
        )
    )


def _move(
    organization_id: int,
    file_id: str,
    to: FileStatus,
    values: dict[str, Any],
    *,
    model: Validated = File,
    returning: tuple[Any, ...] = (),
    quota_gate: bool = False,
    keep_bytes: bool = False,
    then: Callable[[FileStatus], None] | None = None,
) -> tuple[FileStatus, tuple[Any, ...]] | None:
    """The conditional UPDATE behind every move, in its own transaction.

    Returns the status moved to and the `returning` columns, or None when nothing moved.
    `quota_gate` turns the move into `failed` when the organization is over its quota;
    `then` runs in the same transaction once the row has moved.
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
        statement = _move_statement(model, to, tuple(values), returning)
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
        if to is FileStatus.FAILED and model is File:
            name = session.scalar(
                select(File.filename).where(
                    in_organization(File, organization_id), File.id == file_id
                )
            )
            activity.record(
                "file.failed",
                organization_id,
                activity.SYSTEM,
                activity.on_file(file_id, name or ""),
                detail=values.get("error_message"),
            )
        if to is FileStatus.FAILED and not keep_bytes and current_app.config["DELETE_FAILED_FILES"]:
            dropped = _drop_bytes(model, organization_id, file_id)
        if then is not None:
            then(to)
    if dropped is not None:
        get_storage().remove_many([dropped, *keys_of(dropped)])
    # The job logs each verdict; every move is there for debugging.
    log.debug("file %s is %s", file_id, to, extra={"file_id": file_id, "status": str(to)})
    return to, moved


@functools.cache
def _move_statement(
    model: Validated, to: FileStatus, columns: tuple[str, ...], returning: tuple[Any, ...]
) -> Any:
    """The UPDATE for one kind of move, built once per kind (docs/PERFORMANCE.md says why)."""
    statement = (
        update(model)
        .where(
            in_organization(model, bindparam("moved_org")),
            model.id == bindparam("moved_file"),
            # Equalities rather than IN: an IN list is re-rendered on every run.
            or_(*(model.status == status for status in ALLOWED_MOVES[to])),
        )
        .values(status=to, **{column: bindparam(f"new_{column}") for column in columns})
        # Nothing in the session holds the row: no need to look for it there.
        .execution_options(synchronize_session=False)
    )
    return statement.returning(*returning) if returning else statement


def _drop_bytes(model: Validated, organization_id: int, file_id: str) -> str | None:
    """Mark a file's (or version's) bytes gone, which frees their quota (the database's
    trigger); returns the path to remove."""
    row = db.session.execute(
        select(model.file_path, model.bytes_stored).where(
            in_organization(model, organization_id), model.id == file_id
        )
    ).one()
    if not row.bytes_stored:
        return None
    db.session.execute(
        update(model)
        .where(in_organization(model, organization_id), model.id == file_id)
        .values(bytes_stored=False)
    )
    return str(row.file_path)


# ---- versions kept -------------------------------------------------------------------


def prune_versions(organization_id: int, file_id: str) -> int:
    """Keep a file's newest `versions_kept` versions by number (the one it answers with, and
    any still pending or processing, are kept whatever their number); the older ones' rows
    go, then their bytes. Returns how many went."""
    with write_transaction() as session:
        org = session.get(Organization, organization_id)
        number = session.scalar(
            select(File.version).where(in_organization(File, organization_id), File.id == file_id)
        )
        if org is None or number is None:
            return 0
        kept = retention.versions_kept(org)
        others = session.execute(
            select(FileVersion.id, FileVersion.version, FileVersion.status, FileVersion.file_path)
            .where(in_organization(FileVersion, organization_id), FileVersion.file_id == file_id)
            .order_by(FileVersion.version.desc())
        ).all()
        numbers = sorted([number, *(row.version for row in others)], reverse=True)
        newest = set(numbers[:kept])
        going = [
            row
            for row in others
            if row.version not in newest
            and row.status not in (FileStatus.PENDING, FileStatus.PROCESSING)
        ]
        if not going:
            return 0
        paths = [
            str(path)
            for path, stored in session.execute(
                select(FileVersion.file_path, FileVersion.bytes_stored).where(
                    FileVersion.id.in_([row.id for row in going])
                )
            ).all()
            if stored
        ]
        # Their bytes leave the organization's usage with the rows (the triggers).
        session.execute(
            delete(FileVersion)
            .where(
                in_organization(FileVersion, organization_id),
                FileVersion.id.in_([row.id for row in going]),
            )
            .execution_options(synchronize_session=False)
        )
    # After the commit, as a removed file's: a crash here leaves bytes without a row,
    # which `manage.py storage check --fix` removes; never a row without bytes.
    storage = get_storage()
    for path in paths:
        # The version's previews go with its bytes.
        storage.remove_many([path, *keys_of(path)])
    log.info("removed %d older version(s) of file %s", len(going), file_id)
    return len(going)
