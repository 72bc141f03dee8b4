"""Resumable uploads (tus): creation with the quota held, one PATCH at a time on any host,
the last byte making the file, termination and expiry.

An upload belongs to its uploader: only they send its bytes. Its uploader and the
organization's admins see it (HEAD, the listing) and may terminate it; to anyone else it
does not exist (404, as another organization's upload).

The SHA-256 is computed as the bytes arrive and kept between requests in the upload's row
(arrival_hash). The finished file's row gets the digest, so completing a large upload never
reads it back just to hash it.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, Literal, cast

from flask import current_app
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Table,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from .. import metrics
from ..database import write_transaction
from ..extensions import db
from ..libc import READ_BUFFER
from ..models import File, FileVersion, Folder, ResumableUpload, User, utcnow
from ..services import activity
from ..services.errors import Conflict, InvalidInput, NotAllowed, NotFound, TooLarge
from ..services.tenancy import in_organization, scoped
from ..storage import get_storage, object_key
from . import arrival_hash, names, policy, resumable_bytes, versions
from .folders import check_place
from .intake import admitted, arrive, check_size
from .ledger import check_room
from .names import OnConflict

log = logging.getLogger(__name__)

# How long a PATCH may hold an upload before another may take it: a host that died
# mid-PATCH blocks the upload this long at most. Its body has fully arrived before the
# PATCH starts (waitress), so only the store's own time counts against it.
LOCK_SECONDS = 600
# How much of a PATCH body is read at a time.
READ_CHUNK = READ_BUFFER
# A body this long or longer is hashed on a thread of its own, beside its reads and writes
# (arrival_hash); a shorter one on the request's thread: starting and joining the thread
# costs a small PATCH more than it could overlap (docs/PERFORMANCE.md).
THREADED_HASH_BYTES = 2 * READ_CHUNK


@dataclass(frozen=True)
class Progress:
    """Where an upload stands, as HEAD, POST and PATCH answer it."""

    id: str
    organization_id: int
    length: int
    offset: int
    metadata: str
    expires_at: datetime
    completed: bool


def _progress(row: ResumableUpload) -> Progress:
    return Progress(
        id=row.id,
        organization_id=row.organization_id,
        length=row.length,
        offset=row.offset,
        metadata=row.upload_metadata,
        expires_at=row.expires_at,
        completed=row.completed_at is not None,
    )


def _expiry() -> datetime:
    return utcnow() + timedelta(hours=int(current_app.config["RESUMABLE_EXPIRY_HOURS"]))


# ---- creation ------------------------------------------------------------------------


@dataclass(frozen=True)
class ViaRequest:
    """An upload sent through an upload-only link: its organization and folder, and what
    takes one of its files in the creation's transaction (refusing when none is left)."""

    request_id: int
    organization_id: int
    folder_id: str | None
    take_file: Callable[[], None]


def create_via_request(via: ViaRequest, length: int, display: str, metadata: str) -> Progress:
    """Record a new upload an upload-only link's visitor sends: into the link's folder, its
    name numbered when taken, its length held against the quota, one of the link's files
    taken."""
    return _create(via.organization_id, None, length, display, metadata, via=via)


def create(
    user: User,
    length: int,
    display: str,
    metadata: str,
    *,
    folder_raw: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
) -> Progress:
    """Record a new upload into a folder (`root` or None: the top level), holding its whole
    length against the quota; QuotaExceeded when it does not fit with every other holding
    counted.

    The folder is checked now, and with `fail` the name too (409 `name_taken`, nothing
    held); with `replace`, a file of that name the user may not change is 403 and a folder
    of that name 409. A name taken by the time the last byte arrives is numbered (see
    _complete).
    """
    return _create(
        user.organization_id,
        user,
        length,
        display,
        metadata,
        folder_raw=folder_raw,
        on_conflict=on_conflict,
    )


def _create(
    organization_id: int,
    user: User | None,
    length: int,
    display: str,
    metadata: str,
    *,
    folder_raw: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
    via: ViaRequest | None = None,
) -> Progress:
    if not display:
        raise InvalidInput("invalid_filename", "the file name is empty", field="filename")
    check_size(length, field="Upload-Length")
    file_id = str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": file_id,
        "organization_id": organization_id,
        "uploaded_by": None if user is None else user.id,
        "uploaded_via_request": None if via is None else via.request_id,
        "filename": display,
        "upload_metadata": metadata,
        "file_path": object_key(organization_id, file_id, display),
        "length": length,
        "offset": 0,
        "storage_state": "{}",
        "hash_state": arrival_hash.initial_state(),
        "created_at": utcnow(),
        "expires_at": _expiry(),
        "on_conflict": on_conflict.value,
    }
    with write_transaction() as session:
        if via is not None:
            via.take_file()
            values["folder_id"] = via.folder_id
        else:
            values["folder_id"] = check_place(organization_id, folder_raw)
        if on_conflict is OnConflict.FAIL:
            names.lock_names(organization_id)
            names.take(organization_id, values["folder_id"], display, on_conflict, field="filename")
        elif on_conflict is OnConflict.REPLACE:
            names.lock_names(organization_id)
            target = versions.replaceable(organization_id, values["folder_id"], display)
            if target is not None:
                if user is not None:
                    versions.check_may_replace(user, target)
            else:
                # Free, or a folder's (409).
                names.take(
                    organization_id,
                    values["folder_id"],
                    display,
                    OnConflict.FAIL,
                    field="filename",
                )
        session.execute(insert(cast(Table, ResumableUpload.__table__)), values)
        # The row's triggers hold its length against the quota: it must fit with the rest.
        check_room(organization_id, length)
    return Progress(file_id, organization_id, length, 0, metadata, values["expires_at"], False)


# ---- reading -------------------------------------------------------------------------


def _find(organization_id: int, raw_id: str) -> ResumableUpload:
    """A live upload of the organization: unfinished and unexpired, or finished with its
    file still there. Anything else is NotFound."""
    try:
        upload_id = str(uuid.UUID(raw_id))
    except ValueError:
        raise NotFound("not_found", "upload not found") from None
    row = db.session.scalars(
        scoped(ResumableUpload, organization_id).where(ResumableUpload.id == upload_id)
    ).first()
    if row is None:
        raise NotFound("not_found", "upload not found")
    if row.completed_at is not None:
        still_there = db.session.scalar(
            scoped(File, organization_id).with_only_columns(File.id).where(File.id == row.id)
        )
        # An upload that added a version: its bytes are one of a file's versions.
        if still_there is None and not versions.holds_upload(organization_id, row.file_path):
            raise NotFound("not_found", "upload not found")
    elif row.expires_at < utcnow():
        raise NotFound("not_found", "upload not found (it expired)")
    return row


def _visible(user: User, raw_id: str) -> ResumableUpload:
    """A live upload the user may see; NotFound for anyone else's, as for another
    organization's, so a member learns nothing of a colleague's uploads."""
    row = _find(user.organization_id, raw_id)
    if not policy.may_see_upload(user, row.uploaded_by):
        raise NotFound("not_found", "upload not found")
    return row


def _writable(user: User, raw_id: str) -> ResumableUpload:
    """A live upload of the user's own: NotAllowed for an admin's look at someone else's
    (the bytes, and the file they make, would be credited to its uploader)."""
    row = _visible(user, raw_id)
    if not policy.may_write_upload(user, row.uploaded_by):
        raise NotAllowed("forbidden", "only the uploader may send bytes to this upload")
    return row


def progress(user: User, raw_id: str) -> Progress:
    """Where an upload the user may see stands (HEAD)."""
    row = _visible(user, raw_id)
    db.session.rollback()
    return _progress(row)


@dataclass(frozen=True)
class Unfinished:
    """An unfinished upload as listed."""

    id: str
    filename: str
    uploader: str | None
    offset: int
    length: int
    expires_at: datetime
    created_at: datetime


def list_unfinished(user: User) -> list[Unfinished]:
    """The unfinished, unexpired uploads the user may see, newest first: every one of the
    organization's for an admin, their own for a member."""
    query = (
        select(
            ResumableUpload.id,
            ResumableUpload.filename,
            User.email,
            ResumableUpload.offset,
            ResumableUpload.length,
            ResumableUpload.expires_at,
            ResumableUpload.created_at,
        )
        .outerjoin(User, User.id == ResumableUpload.uploaded_by)
        .where(
            in_organization(ResumableUpload, user.organization_id),
            ResumableUpload.completed_at.is_(None),
            ResumableUpload.expires_at >= utcnow(),
        )
        .order_by(ResumableUpload.created_at.desc(), ResumableUpload.id.desc())
    )
    if not policy.sees_every_upload(user):
        query = query.where(ResumableUpload.uploaded_by == user.id)
    rows = db.session.execute(query).all()
    db.session.rollback()
    return [Unfinished(*row) for row in rows]


# ---- the lock ------------------------------------------------------------------------


def _free(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Whether no request holds the upload: never locked, or its holder's lease lapsed."""
    return or_(ResumableUpload.locked_until.is_(None), ResumableUpload.locked_until < now)


def _lease(token: str, now: datetime) -> dict[str, Any]:
    """The values that hold an upload for the request with this token."""
    return {"lock_token": token, "locked_until": now + timedelta(seconds=LOCK_SECONDS)}


def _lock(upload_id: str, offset: int | None = None) -> str:
    """Take the upload for this request, or Conflict while another request holds it (or,
    given an `offset`, once the upload has moved past it).

    A conditional UPDATE in the database, so it holds across hosts; its token fences the
    write that accepts the bytes, so a holder whose lock lapsed cannot commit over another.
    """
    token = secrets.token_hex(16)
    now = utcnow()
    condition = [ResumableUpload.id == upload_id, _free(now)]
    if offset is not None:
        # Read again under the lock: a PATCH that ended since the first look moved it.
        condition.append(ResumableUpload.offset == offset)
    with write_transaction() as session:
        taken = session.execute(
            update(ResumableUpload)
            .where(*condition)
            .values(_lease(token, now))
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("upload_locked", "another request is writing to this upload")
    return token


def _unlock(upload_id: str, token: str) -> None:
    with write_transaction() as session:
        session.execute(
            update(ResumableUpload)
            .where(ResumableUpload.id == upload_id, ResumableUpload.lock_token == token)
            .values(lock_token=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )


# ---- PATCH ---------------------------------------------------------------------------


def append(user: User, raw_id: str, offset: int, body: IO[bytes], body_length: int) -> Progress:
    """Add a PATCH body at `offset` to one of the user's own uploads; the last byte makes
    the file (completed=True).

    NotFound for an upload the user may not see, NotAllowed for one they may see but did not
    start; Conflict when the offset is not the server's or another PATCH holds the upload;
    TooLarge when the body would pass Upload-Length. A PATCH of no bytes leaves the expiry
    where it was: only bytes buy time.
    """
    organization_id = user.organization_id
    taken = _take(organization_id, raw_id, offset, body_length, ("uploaded_by", user.id))
    if taken is not None:
        return _write(organization_id, taken, offset, body, body_length)
    return _append_to(organization_id, _writable(user, raw_id), offset, body, body_length)


def sent_via_request(request_id: int, organization_id: int, raw_id: str) -> ResumableUpload:
    """A live upload an upload-only link's visitor began; NotFound for any other."""
    row = _find(organization_id, raw_id)
    if row.uploaded_via_request != request_id:
        raise NotFound("not_found", "upload not found")
    return row


def progress_via_request(request_id: int, organization_id: int, raw_id: str) -> Progress:
    """Where an upload sent through an upload-only link stands (HEAD)."""
    row = sent_via_request(request_id, organization_id, raw_id)
    db.session.rollback()
    return _progress(row)


def append_via_request(
    request_id: int, organization_id: int, raw_id: str, offset: int, body: IO[bytes], length: int
) -> Progress:
    """Add a PATCH body to an upload sent through an upload-only link (as `append`)."""
    taken = _take(organization_id, raw_id, offset, length, ("uploaded_via_request", request_id))
    if taken is not None:
        return _write(organization_id, taken, offset, body, length)
    row = sent_via_request(request_id, organization_id, raw_id)
    return _append_to(organization_id, row, offset, body, length)


# Who may send a PATCH's bytes: the column that names an upload's sender.
Sender = Literal["uploaded_by", "uploaded_via_request"]


@dataclass(frozen=True)
class _Taken:
    """What a PATCH needs of the upload it holds (and the lock's token)."""

    id: str
    file_path: str
    length: int
    upload_metadata: str
    expires_at: datetime
    storage_state: str
    hash_state: bytes
    token: str


def _take(
    organization_id: int,
    raw_id: str,
    offset: int,
    body_length: int,
    sender: tuple[Sender, int],
) -> _Taken | None:
    """Lock an upload the PATCH may write and read it, in one statement: unfinished,
    unexpired and unlocked, of the organization and sent by `sender` (its column and
    value), at `offset`, with room for the body. None when any of it fails: the PATCH then
    reads the upload to say why (or takes the lock after all, freed meanwhile).

    The common PATCH pays one statement here instead of a read and then the lock."""
    if not db.engine.dialect.update_returning:  # SQLite before 3.35
        return None
    try:
        upload_id = str(uuid.UUID(raw_id))
    except ValueError:
        return None
    token = secrets.token_hex(16)
    now = utcnow()
    column, value = sender
    lease = _lease(token, now)
    with write_transaction() as session:
        row = session.execute(
            _take_statement(column),
            {
                "take_id": upload_id,
                "take_org": organization_id,
                "take_sender": value,
                "take_now": now,
                "take_offset": offset,
                "take_end": offset + body_length,
                "new_token": lease["lock_token"],
                "new_until": lease["locked_until"],
            },
        ).first()
    return None if row is None else _Taken(**row._asdict(), token=token)


@functools.cache
def _take_statement(sender_column: Sender) -> Any:
    """_take's UPDATE ... RETURNING for uploads sent by one column's value, built once: on
    every PATCH, building it cost about as much as running it (docs/PERFORMANCE.md)."""
    now = bindparam("take_now", type_=ResumableUpload.expires_at.type)
    return (
        update(ResumableUpload)
        .where(
            ResumableUpload.id == bindparam("take_id"),
            in_organization(ResumableUpload, bindparam("take_org")),
            getattr(ResumableUpload, sender_column) == bindparam("take_sender"),
            ResumableUpload.completed_at.is_(None),
            ResumableUpload.expires_at >= now,
            _free(now),
            ResumableUpload.offset == bindparam("take_offset"),
            ResumableUpload.length >= bindparam("take_end"),
        )
        .values(lock_token=bindparam("new_token"), locked_until=bindparam("new_until"))
        .returning(
            ResumableUpload.id,
            ResumableUpload.file_path,
            ResumableUpload.length,
            ResumableUpload.upload_metadata,
            ResumableUpload.expires_at,
            ResumableUpload.storage_state,
            ResumableUpload.hash_state,
        )
        .execution_options(synchronize_session=False)
    )


def _append_to(
    organization_id: int, row: ResumableUpload, offset: int, body: IO[bytes], body_length: int
) -> Progress:
    if offset != row.offset:
        raise Conflict(
            "offset_mismatch",
            f"the upload is at offset {row.offset}, not {offset}",
            offset=row.offset,
        )
    if offset + body_length > row.length:
        raise TooLarge(
            "past_upload_length",
            f"the body ({body_length} bytes) goes past Upload-Length ({row.length} bytes)",
        )
    if row.completed_at is not None:
        return _progress(row)  # nothing left to send
    taken = _Taken(
        row.id,
        row.file_path,
        row.length,
        row.upload_metadata,
        row.expires_at,
        row.storage_state,
        row.hash_state,
        token=_lock(row.id, offset),
    )
    return _write(organization_id, taken, offset, body, body_length)


def _write(
    organization_id: int, taken: _Taken, offset: int, body: IO[bytes], body_length: int
) -> Progress:
    """Store the body of a PATCH that holds the upload, then record it and let go."""
    upload_id, key, length, metadata = (
        taken.id,
        taken.file_path,
        taken.length,
        taken.upload_metadata,
    )
    expires_at, token, hash_state = taken.expires_at, taken.token, taken.hash_state
    old_state: dict[str, Any] = json.loads(taken.storage_state)
    try:
        new_offset = offset + body_length
        if body_length:
            threaded = body_length >= THREADED_HASH_BYTES
            with arrival_hash.ArrivalHash(hash_state, threaded=threaded) as hasher:
                state = resumable_bytes.append(
                    get_storage(),
                    upload_id,
                    key,
                    old_state,
                    offset,
                    _chunks(body, body_length, hasher),
                    final=new_offset == length,
                )
                hash_state = hasher.state()
            expires_at = _expiry()
        else:
            state = old_state
        with write_transaction() as session:
            # The bytes, the backend's state and the hash move together, or not at all.
            accepted = session.execute(
                _accept_statement(),
                {
                    "accept_id": upload_id,
                    "accept_token": token,
                    "new_offset": new_offset,
                    "new_storage_state": json.dumps(state),
                    "new_hash_state": hash_state,
                    "new_expires_at": expires_at,
                },
            )
            if accepted.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("upload_locked", "the upload was taken over by another request")
    except BaseException:
        _unlock(upload_id, token)
        raise
    resumable_bytes.release(get_storage(), old_state, state)
    if new_offset == length:
        _complete(upload_id)
        done = _find(organization_id, upload_id)  # read again: is its file there?
        db.session.rollback()
        return _progress(done)
    # Known without reading the row again: this request wrote each of these values.
    return Progress(upload_id, organization_id, length, new_offset, metadata, expires_at, False)


@functools.cache
def _accept_statement() -> Any:
    """The UPDATE that records a PATCH's bytes and lets go of the upload, if the PATCH
    still holds it; built once, as _take's."""
    return (
        update(ResumableUpload)
        .where(
            ResumableUpload.id == bindparam("accept_id"),
            ResumableUpload.lock_token == bindparam("accept_token"),
        )
        .values(
            offset=bindparam("new_offset"),
            storage_state=bindparam("new_storage_state"),
            hash_state=bindparam("new_hash_state"),
            expires_at=bindparam("new_expires_at"),
            lock_token=None,
            locked_until=None,
        )
        .execution_options(synchronize_session=False)
    )


def _chunks(body: IO[bytes], body_length: int, hasher: arrival_hash.ArrivalHash) -> Iterator[bytes]:
    """The body in chunks, each handed to the hash as it is read (hashed while the store
    writes it); it must hold exactly `body_length` bytes."""
    left = body_length
    while left > 0:
        chunk = body.read(min(READ_CHUNK, left))
        if not chunk:
            raise InvalidInput("incomplete_body", "the body ended before its Content-Length")
        metrics.count_bytes_received("tus", len(chunk))
        left -= len(chunk)
        hasher.update(chunk)
        yield chunk


def _complete(upload_id: str) -> None:
    """Make a fully received upload its file, `pending`: the holding becomes usage.

    Harmless when run twice (a PATCH retried after a failure between the two steps).
    """
    row = db.session.get(ResumableUpload, upload_id, populate_existing=True)
    if row is None or row.completed_at is not None or row.offset != row.length:
        db.session.rollback()
        return
    state = json.loads(row.storage_state)
    resumable_bytes.finish(get_storage(), row.id, row.file_path, state, row.length)
    sha256 = arrival_hash.hex_digest(row.hash_state)
    file_id, organization_id, uploaded_by = row.id, row.organization_id, row.uploaded_by
    via_request = row.uploaded_via_request
    filename, key, length, folder_id = row.filename, row.file_path, row.length, row.folder_id
    on_conflict = OnConflict(row.on_conflict)
    with write_transaction() as session:
        done = session.execute(
            update(ResumableUpload)
            .where(ResumableUpload.id == upload_id, ResumableUpload.completed_at.is_(None))
            .values(completed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return
        if folder_id is not None and not _folder_live(organization_id, folder_id):
            # Removed or put in the trash meanwhile: the file is kept at the top level.
            folder_id = None
        uploader = None if uploaded_by is None else session.get(User, uploaded_by)
        # A name taken since the upload began is numbered (or, with `replace`, a file's
        # name takes a version): the bytes are all here, and a client told 409 now could
        # only send them again. The triggers move the holding to usage: completed_at frees
        # it, the new row adds it.
        accepted = arrive(
            uploader=uploader,
            new_id=file_id,
            organization_id=organization_id,
            folder_id=folder_id,
            filename=filename,
            key=key,
            size=length,
            sha256=sha256,
            on_conflict=OnConflict.REPLACE
            if on_conflict is OnConflict.REPLACE
            else OnConflict.RENAME,
            strict=False,
            actor=None if via_request is None else activity.by_request(via_request),
            via_request=via_request,
        )
    admitted(accepted, organization_id, via="tus")


def _folder_live(organization_id: int, folder_id: str) -> bool:
    """Whether the folder exists and is not in the trash."""
    found = db.session.scalar(
        scoped(Folder, organization_id).with_only_columns(Folder.id).where(Folder.id == folder_id)
    )
    return found is not None


# ---- termination and expiry ----------------------------------------------------------


def terminate(user: User, raw_id: str) -> None:
    """Remove an unfinished upload (its uploader or an admin): its bytes go and its holding
    is freed."""
    row = _visible(user, raw_id)
    if row.completed_at is not None:
        raise NotFound("not_found", "the upload has finished: it is the file of the same id")
    found = (row.id, row.file_path, row.storage_state)
    token = _lock(row.id)
    _drop(*found, token=token)


def _drop(
    upload_id: str,
    key: str,
    storage_state: str,
    *,
    token: str | None = None,
    expired_before: datetime | None = None,
) -> bool:
    """Delete an unfinished upload's row and holding, then its bytes; False when it was
    not there (or no longer matched) to delete."""
    condition = [ResumableUpload.id == upload_id, ResumableUpload.completed_at.is_(None)]
    if token is not None:
        condition.append(ResumableUpload.lock_token == token)
    if expired_before is not None:
        now = utcnow()
        condition += [
            ResumableUpload.expires_at < expired_before,
            _free(now),
        ]
    with write_transaction() as session:
        # Its holding goes with the row (the database's trigger).
        deleted = session.execute(delete(ResumableUpload).where(*condition))
        if deleted.rowcount != 1:  # type: ignore[attr-defined]
            return False
    # After the commit: a failure here leaves pieces without a row, which
    # `manage.py storage check --fix` removes; never a row without its pieces.
    resumable_bytes.discard(get_storage(), upload_id, key, json.loads(storage_state))
    return True


def expire_resumable(now: datetime | None = None) -> int:
    """Remove every upload not written to within RESUMABLE_EXPIRY_HOURS, freeing its bytes
    and holding, and forget finished uploads whose file is gone; returns how many expired."""
    now = now or utcnow()
    # Cross-tenant on purpose: the worker's sweep over every organization.
    stale = db.session.execute(
        select(
            ResumableUpload.id,
            ResumableUpload.file_path,
            ResumableUpload.storage_state,
        ).where(ResumableUpload.completed_at.is_(None), ResumableUpload.expires_at < now)
    ).all()
    db.session.rollback()
    expired = 0
    for upload_id, key, storage_state in stale:
        if _drop(upload_id, key, storage_state, expired_before=now):
            expired += 1
    with write_transaction() as session:
        session.execute(
            delete(ResumableUpload).where(
                ResumableUpload.completed_at.is_not(None),
                ~select(File.id).where(File.id == ResumableUpload.id).exists(),
                # An upload that added a version answers while its bytes are a version:
                # one the file does not yet (or no longer) answer with, or the one it does.
                ~select(FileVersion.id)
                .where(FileVersion.file_path == ResumableUpload.file_path)
                .exists(),
                ~select(File.id).where(File.file_path == ResumableUpload.file_path).exists(),
            )
        )
    if expired:
        log.info("removed %d expired resumable upload(s)", expired)
    return expired


# A fully received upload whose last PATCH ended this long ago without making the file
# (its host died between the two steps) is completed by the sweep; a live PATCH makes its
# file within moments of recording the last byte.
STRANDED_SECONDS = 60


def complete_stranded(now: datetime | None = None) -> int:
    """Make the file of every upload whose bytes all arrived but whose file was never made;
    returns how many. HEAD already tells their clients they are done."""
    now = now or utcnow()
    window = timedelta(hours=int(current_app.config["RESUMABLE_EXPIRY_HOURS"]))
    # expires_at is the last PATCH plus the window: this is "last PATCH before the cut-off".
    cutoff = now + window - timedelta(seconds=STRANDED_SECONDS)
    # Cross-tenant on purpose: the worker's sweep over every organization.
    stranded = db.session.scalars(
        select(ResumableUpload.id).where(
            ResumableUpload.completed_at.is_(None),
            ResumableUpload.offset == ResumableUpload.length,
            ResumableUpload.expires_at < cutoff,
            _free(now),
        )
    ).all()
    db.session.rollback()
    for upload_id in stranded:
        _complete(upload_id)
        log.info("completed stranded resumable upload %s", upload_id, extra={"file_id": upload_id})
    return len(stranded)


def in_flight_pieces() -> set[str]:
    """The storage keys every unfinished upload's pieces are listed under, for the check."""
    storage = get_storage()
    rows = db.session.execute(
        select(ResumableUpload.id, ResumableUpload.file_path, ResumableUpload.storage_state).where(
            ResumableUpload.completed_at.is_(None)
        )
    ).all()
    db.session.rollback()
    pieces: set[str] = set()
    for upload_id, key, storage_state in rows:
        pieces |= resumable_bytes.pieces(storage, upload_id, key, json.loads(storage_state))
    return pieces
