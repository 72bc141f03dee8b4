"""The trash: deleting a file or folder moves it here, from where it is restored, deleted
for good, or purged once the organization's retention has passed.

An item of the trash is the file or folder a user deleted (its `trash_root` is its own id);
everything below a deleted folder goes with it (their `trash_root` is the folder's id) and
comes back with it. A trashed row keeps its place and name, so it can go back where it was;
to every other query it does not exist (`tenancy.scoped` leaves it out, the names index
holds live rows only).

Removal for good has two steps. First the item's own row is marked `purging`, in one
conditional UPDATE: from then on a restore cannot take it (a restore's UPDATE is conditional
on the opposite), so a restore and a purge of one item never both succeed. Then its files
are purged in batches, bytes first and rows after (each batch a short transaction); a purge
cut short leaves marked rows, some without their bytes, which the next sweep finishes,
removal being idempotent. Folders go last, leaves first.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, select, tuple_, update
from sqlalchemy.orm import aliased, selectinload

from ..database import write_transaction
from ..extensions import db
from ..models import File, Folder, Organization, User, utcnow
from ..services import activity, webhooks
from ..services.errors import InvalidInput, NotAllowed, NotFound
from ..services.tenancy import in_organization, live, scoped
from . import folders, lifecycle, names, policy, retention
from .access import get_file
from .names import OnConflict

log = logging.getLogger(__name__)

Kind = Literal["file", "folder"]
# Rows per purge transaction, and per marking one: each stays well under a second on
# SQLite, whose writers take turns.
PURGE_BATCH = 500
DEFAULT_LIMIT = 50
KINDS: tuple[tuple[type[File] | type[Folder], Kind], ...] = ((File, "file"), (Folder, "folder"))


@dataclass(frozen=True)
class TrashItem:
    """A file or folder in the trash, as the trash lists it."""

    id: str
    kind: Kind
    name: str
    # Where it was: `/A/B/name`.
    path: str
    # A folder's: the bytes of the files trashed with it.
    size: int
    deleted_at: datetime
    deleted_by_email: str | None
    purge_at: datetime


@dataclass(frozen=True)
class TrashPage:
    """One page of the trash, newest first."""

    items: list[TrashItem]
    next_cursor: str | None


@dataclass(frozen=True)
class Restored:
    """An item back out of the trash, and where it now is."""

    id: str
    kind: Kind
    path: str


# ---- into the trash ------------------------------------------------------------------------


def trash_file(user: User, raw_id: str) -> TrashItem:
    """Move a file to the trash (its uploader or an admin; else NotAllowed); `file.trashed`
    once that has committed."""
    organization_id = user.organization_id
    with write_transaction() as session:
        row = get_file(organization_id, raw_id, for_update=True)
        if not policy.may_delete_file(user, row.uploaded_by):
            raise NotAllowed("forbidden", "only the uploader or an admin can delete this file")
        path = folders.file_path(organization_id, row.folder_id, row.filename)
        snapshot = webhooks.file_snapshot(row, path)
        now = utcnow()
        session.execute(
            update(File)
            .where(in_organization(File, organization_id), File.id == row.id, live(File))
            .values(trashed_at=now, trashed_by=user.id, trash_root=row.id, purging=False)
            .execution_options(synchronize_session=False)
        )
        activity.record(
            "file.trashed",
            organization_id,
            activity.acting(user),
            activity.on_file(row.id, row.filename),
        )
        item = TrashItem(
            id=row.id,
            kind="file",
            name=row.filename,
            path=path,
            size=row.size,
            deleted_at=now,
            deleted_by_email=user.email,
            purge_at=retention.purge_at(_organization(organization_id), now),
        )
    webhooks.emit(webhooks.FILE_TRASHED, organization_id, snapshot)
    return item


def trash_folder(user: User, raw_id: str) -> TrashItem:
    """Move a folder to the trash with every folder and file below it (one UPDATE per table
    over the tree); NotAllowed, and nothing moved, when it holds a file the user may not
    delete. A `file.trashed` event for each file once that has committed."""
    organization_id = user.organization_id
    with write_transaction() as session:
        folder = folders.get_folder(organization_id, raw_id, for_update=True)
        # Nothing may be uploaded or moved into the tree while it goes.
        names.lock_names(organization_id)
        tree = folders.subtree(organization_id, folder.id)
        rows = list(
            session.scalars(
                scoped(File, organization_id)
                .where(File.folder_id.in_(select(tree.c.id)))
                .options(selectinload(File.uploader))
            )
        )
        if not all(policy.may_delete_file(user, row.uploaded_by) for row in rows):
            raise NotAllowed(
                "forbidden",
                "the folder holds files only their uploader or an admin can delete",
            )
        paths = folders.paths_of(organization_id, {folder.id, *(row.folder_id for row in rows)})
        snapshots = [
            webhooks.file_snapshot(row, f"{paths[row.folder_id]}/{row.filename}") for row in rows
        ]
        now = utcnow()
        marks = {"trashed_at": now, "trashed_by": user.id, "trash_root": folder.id}
        # Files first: the folders' UPDATE takes the tree out of the live rows the tree's
        # query walks.
        session.execute(
            update(File)
            .where(
                in_organization(File, organization_id),
                live(File),
                File.folder_id.in_(select(tree.c.id)),
            )
            .values(purging=False, **marks)
            .execution_options(synchronize_session=False)
        )
        tree = folders.subtree(organization_id, folder.id)
        session.execute(
            update(Folder)
            .where(in_organization(Folder, organization_id), Folder.id.in_(select(tree.c.id)))
            .values(purging=False, **marks)
            .execution_options(synchronize_session=False)
        )
        activity.record(
            "folder.trashed",
            organization_id,
            activity.acting(user),
            activity.Target("folder", folder.id, folder.name),
        )
        item = TrashItem(
            id=folder.id,
            kind="folder",
            name=folder.name,
            path=paths[folder.id],
            size=sum(row.size for row in rows),
            deleted_at=now,
            deleted_by_email=user.email,
            purge_at=retention.purge_at(_organization(organization_id), now),
        )
    webhooks.emit_each(webhooks.FILE_TRASHED, organization_id, snapshots)
    return item


# ---- the list ------------------------------------------------------------------------------


def list_trash(user: User, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> TrashPage:
    """The items of the trash, newest first (ties by id): admins see every one, members
    their own files and the folders they deleted."""
    organization_id = user.organization_id
    after = decode_cursor(cursor) if cursor else None
    found: list[tuple[datetime, str, Kind]] = []
    for model, kind in KINDS:
        query = _items(model, organization_id).with_only_columns(model.trashed_at, model.id)
        if not policy.is_admin(user):
            owner = File.uploaded_by if model is File else Folder.trashed_by
            query = query.where(owner == user.id)
        if after is not None:
            query = query.where(tuple_(model.trashed_at, model.id) < tuple_(*after))
        query = query.order_by(model.trashed_at.desc(), model.id.desc()).limit(limit + 1)
        found += [(at, str(item_id), kind) for at, item_id in db.session.execute(query) if at]
    found.sort(reverse=True)
    page = found[:limit]
    items = _described(organization_id, page)
    next_cursor = encode_cursor(page[-1][0], page[-1][1]) if len(found) > limit else None
    return TrashPage(items=items, next_cursor=next_cursor)


def _items(model: type[File] | type[Folder], organization_id: int) -> Select[Any]:
    """The organization's rows of `model` that are items of its trash (not being purged)."""
    return select(model).where(
        in_organization(model, organization_id),
        model.trashed_at.is_not(None),
        model.trash_root == model.id,
        ~model.purging,
    )


def _described(organization_id: int, page: list[tuple[datetime, str, Kind]]) -> list[TrashItem]:
    """The page's items with their names, paths, sizes and who deleted them."""
    file_ids = [item_id for _, item_id, kind in page if kind == "file"]
    folder_ids = [item_id for _, item_id, kind in page if kind == "folder"]
    files: dict[str, File] = {}
    trashed_folders: dict[str, Folder] = {}
    sizes: dict[str, int] = {}
    if file_ids:
        files = {
            row.id: row for row in db.session.scalars(select(File).where(File.id.in_(file_ids)))
        }
    if folder_ids:
        query = select(Folder).where(Folder.id.in_(folder_ids))
        trashed_folders = {row.id: row for row in db.session.scalars(query)}
        totals = (
            select(File.trash_root, func.coalesce(func.sum(File.size), 0))
            .where(in_organization(File, organization_id), File.trash_root.in_(folder_ids))
            .group_by(File.trash_root)
        )
        sizes = {str(root): int(total) for root, total in db.session.execute(totals)}
    deleters = {row.trashed_by for row in files.values()} | {
        row.trashed_by for row in trashed_folders.values()
    }
    emails = {
        user_id: email
        for user_id, email in db.session.execute(
            select(User.id, User.email).where(User.id.in_([d for d in deleters if d is not None]))
        )
    }
    places = {row.folder_id for row in files.values()} | {
        row.parent_id for row in trashed_folders.values()
    }
    paths = folders.paths_of(organization_id, places)
    org = _organization(organization_id)
    items = []
    for at, item_id, kind in page:
        row: File | Folder
        if kind == "file":
            row = files[item_id]
            name, place, size = row.filename, row.folder_id, row.size
        else:
            row = trashed_folders[item_id]
            name, place, size = row.name, row.parent_id, int(sizes.get(item_id, 0))
        items.append(
            TrashItem(
                id=item_id,
                kind=kind,
                name=name,
                path=f"{paths[place]}/{name}",
                size=size,
                deleted_at=at,
                deleted_by_email=emails.get(row.trashed_by) if row.trashed_by else None,
                purge_at=retention.purge_at(org, at),
            )
        )
    return items


def encode_cursor(trashed_at: datetime, item_id: str) -> str:
    """An opaque cursor pointing just after this item."""
    raw = f"{trashed_at.isoformat(timespec='microseconds')}|{item_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (trashed_at, id) a cursor points after; InvalidInput when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, item_id = raw.partition("|")
        return datetime.fromisoformat(stamp).replace(tzinfo=None), str(uuid.UUID(item_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid_parameter", "cursor is not valid", field="cursor") from None


# ---- restore -------------------------------------------------------------------------------


def restore(user: User, raw_id: str) -> Restored:
    """Put an item of the trash back where it was, or at the top level when that folder is
    gone or in the trash; a name taken meanwhile is numbered as `on_conflict=rename` does.
    NotFound when it is not in the trash (or its purge has begun); `file.restored` for each
    of its files once that has committed."""
    organization_id = user.organization_id
    item_id = _item_id(raw_id)
    with write_transaction() as session:
        names.lock_names(organization_id)
        row = _item(organization_id, item_id)
        _require_removing(user, row)
        model: type[File] | type[Folder]
        kind: Kind
        if isinstance(row, File):
            model, kind, place, name = File, "file", row.folder_id, row.filename
        else:
            model, kind, place, name = Folder, "folder", row.parent_id, row.name
        if place is not None and not _folder_is_live(organization_id, place):
            place = None
        if isinstance(row, File):
            name, key = names.take(
                organization_id, place, name, OnConflict.RENAME, except_file=item_id
            )
            values: dict[str, Any] = {"filename": name, "name_key": key, "folder_id": place}
        else:
            name, key = names.take(
                organization_id, place, name, OnConflict.RENAME, except_folder=item_id
            )
            values = {"name": name, "name_key": key, "parent_id": place}
        cleared = {"trashed_at": None, "trashed_by": None, "trash_root": None}
        # Conditional on the item not being purged: a purge that marked it first wins.
        done = session.execute(
            update(model)
            .where(*_is_item(model, organization_id, item_id))
            .values(**cleared, **values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("not_found", "no such item in the trash")
        activity.record(
            "file.restored" if kind == "file" else "folder.restored",
            organization_id,
            activity.acting(user),
            activity.Target(kind, item_id, name, item_id if kind == "file" else None),
        )
        file_ids = [item_id] if kind == "file" else []
        if kind == "folder":
            file_ids = list(
                session.scalars(
                    select(File.id).where(
                        in_organization(File, organization_id),
                        File.trash_root == item_id,
                        File.trashed_at.is_not(None),
                    )
                )
            )
            for member in (Folder, File):
                session.execute(
                    update(member)
                    .where(
                        in_organization(member, organization_id),
                        member.trash_root == item_id,
                        member.trashed_at.is_not(None),
                    )
                    .values(**cleared)
                    .execution_options(synchronize_session=False)
                )
        path = f"{folders.path_of(organization_id, place)}/{name}"
    _announce(organization_id, webhooks.FILE_RESTORED, file_ids)
    return Restored(id=item_id, kind=kind, path=path)


def _announce(organization_id: int, event_type: str, file_ids: list[str]) -> None:
    """An event for each of these (live) files, as their details now give them."""
    snapshots = []
    for start in range(0, len(file_ids), PURGE_BATCH):
        rows = list(
            db.session.scalars(
                scoped(File, organization_id)
                .where(File.id.in_(file_ids[start : start + PURGE_BATCH]))
                .options(selectinload(File.uploader))
            )
        )
        snapshots += [webhooks.file_snapshot(row) for row in rows]
    db.session.rollback()
    webhooks.emit_each(event_type, organization_id, snapshots)


# ---- removal for good ----------------------------------------------------------------------


def delete_forever(user: User, raw_id: str) -> None:
    """Remove an item of the trash for good (a file: its uploader or an admin; a folder: who
    may delete every file in it): its bytes, its quota, a `file.deleted` event per file."""
    organization_id = user.organization_id
    item_id = _item_id(raw_id)
    with write_transaction() as session:
        row = _item(organization_id, item_id)
        _require_removing(user, row)
        model = File if isinstance(row, File) else Folder
        marked = session.execute(
            update(model)
            .where(*_is_item(model, organization_id, item_id))
            .values(purging=True)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("not_found", "no such item in the trash")
        kind: Kind = "file" if isinstance(row, File) else "folder"
        name = row.filename if isinstance(row, File) else row.name
        _record_deletions(organization_id, activity.acting(user), kind, [(row.id, name)])
    _purge(organization_id=organization_id, root=item_id)


def _record_deletions(
    organization_id: int, actor: activity.Actor, kind: Kind, items: list[tuple[str, str]]
) -> None:
    """`file.deleted` or `folder.deleted` for each (id, name) removed for good, in the
    transaction that marks it."""
    activity.record_many(
        f"{kind}.deleted",  # type: ignore[arg-type]  # file.deleted or folder.deleted
        organization_id,
        actor,
        [
            activity.Target(kind, item_id, name, item_id if kind == "file" else None)
            for item_id, name in items
        ],
    )


def empty_trash(user: User) -> int:
    """Remove every item of the organization's trash for good (admin); how many items."""
    policy.require_admin(user)
    marked = mark_for_purge(user.organization_id, cutoff=None, actor=activity.acting(user))
    _purge(organization_id=user.organization_id)
    return marked


def purge_due(
    now: datetime | None = None,
    batch: int = PURGE_BATCH,
    *,
    between: Callable[[], None] | None = None,
    organization_id: int | None = None,
    older_than_days: int | None = None,
) -> int:
    """The sweep's purge: in every organization (or the one given), the items trashed at
    least its retention ago (or `older_than_days`, the operator's choice), and whatever a
    purge cut short left marked; how many files and folders went. `between` is called
    between batches (the sweep keeps its lock with it)."""
    now = now or utcnow()
    wanted = [organization_id] if organization_id is not None else _organizations_with_trash()
    for org_id in wanted:
        days = older_than_days
        if days is None:
            days = retention.trash_retention_days(_organization(org_id))
        mark_for_purge(org_id, cutoff=now - timedelta(days=days), batch=batch, between=between)
    return _purge(organization_id=organization_id, batch=batch, between=between)


def mark_for_purge(
    organization_id: int,
    *,
    cutoff: datetime | None,
    batch: int = PURGE_BATCH,
    between: Callable[[], None] | None = None,
    actor: activity.Actor = activity.SYSTEM,
) -> int:
    """Mark the organization's items trashed at or before `cutoff` (None: all) `purging`,
    a batch per transaction, each recorded as deleted by `actor`; how many were marked."""
    marked = 0
    for model in (File, Folder):
        while True:
            due = _items(model, organization_id).with_only_columns(model.id)
            if cutoff is not None:
                due = due.where(model.trashed_at <= cutoff)
            due = due.order_by(model.trashed_at).limit(batch).correlate(None)
            name = File.filename if model is File else Folder.name
            with write_transaction() as session:
                # One statement: still items of the trash when it runs (a restore may
                # have come first), marked, and named for the record.
                taken = [
                    (str(item_id), str(item_name))
                    for item_id, item_name in session.execute(
                        update(model)
                        .where(model.id.in_(due.scalar_subquery()))
                        .values(purging=True)
                        .returning(model.id, name)
                        .execution_options(synchronize_session=False)
                    )
                ]
                kind: Kind = "file" if model is File else "folder"
                _record_deletions(organization_id, actor, kind, taken)
            marked += len(taken)
            if between is not None:
                between()
            if len(taken) < batch:
                break
    return marked


def _purge(
    *,
    organization_id: int | None = None,
    root: str | None = None,
    batch: int = PURGE_BATCH,
    between: Callable[[], None] | None = None,
) -> int:
    """Remove for good the files, then the folders, of marked items (in one organization,
    or one item); how many rows went."""
    gone = 0
    while True:
        count = _purge_files(_to_purge(File, organization_id, root), batch)
        gone += count
        if between is not None:
            between()
        if count < batch:
            break
    while True:
        count = _purge_folders(_to_purge(Folder, organization_id, root), batch)
        gone += count
        if between is not None:
            between()
        if count == 0:
            break
    if gone:
        log.info("purged %d file(s) and folder(s) from the trash", gone)
    return gone


def _to_purge(
    model: type[File] | type[Folder], organization_id: int | None, root: str | None
) -> list[ColumnElement[bool]]:
    """The condition of rows whose removal for good has begun: marked themselves, or in a
    marked folder's tree."""
    condition: list[ColumnElement[bool]] = [being_purged(model)]
    if organization_id is not None:
        condition.append(in_organization(model, organization_id))
    if root is not None:
        condition.append(model.trash_root == root)
    return condition


def being_purged(model: type[File] | type[Folder]) -> ColumnElement[bool]:
    """The condition of rows whose removal for good has begun (their bytes may be partly
    gone): marked themselves, or in a marked folder's tree."""
    roots = aliased(Folder)
    marked_folders = select(roots.id).where(roots.trashed_at.is_not(None), roots.purging)
    return and_(model.trashed_at.is_not(None), model.purging | model.trash_root.in_(marked_folders))


def _purge_files(condition: list[ColumnElement[bool]], batch: int) -> int:
    """One batch of marked files: bytes first, then the rows, then the events."""
    rows = list(
        db.session.scalars(
            select(File)
            .where(*condition)
            .order_by(File.trashed_at, File.id)
            .limit(batch)
            .options(selectinload(File.uploader))
        )
    )
    by_organization: dict[int, list[File]] = {}
    for row in rows:
        by_organization.setdefault(row.organization_id, []).append(row)
    removed: dict[int, list[lifecycle.Removed]] = {}
    for org_id, org_rows in by_organization.items():
        paths = folders.paths_of(org_id, {row.folder_id for row in org_rows})
        removed[org_id] = lifecycle.removals(
            org_id, org_rows, {row.id: f"{paths[row.folder_id]}/{row.filename}" for row in org_rows}
        )
    for row in rows:
        # Kept as read: the session must not reload them once they are gone.
        db.session.expunge(row)
    db.session.rollback()  # no transaction held while the bytes go
    for items in removed.values():
        lifecycle.remove_bytes(items)
    deleted: set[str] = set()
    with write_transaction():
        for org_id, org_rows in by_organization.items():
            # The organization before the rows, as a restore takes them: the rows' counting
            # triggers need the organization's row, which a restore holds while it waits
            # for its rows.
            names.lock_names(org_id)
            deleted |= lifecycle.delete_rows(org_id, org_rows)
    for org_id, items in removed.items():
        # Only this purge's: another purger (the operator's command beside the sweep) may
        # have finished some of the same marked rows first, and told of them.
        lifecycle.announce_removal(org_id, [i for i in items if i.snapshot["id"] in deleted])
    return len(rows)


def _purge_folders(condition: list[ColumnElement[bool]], batch: int) -> int:
    """One batch of marked folders whose files are gone, leaves first; rows trashed on
    their own inside them go to the top level (where a restore would put them)."""
    child = aliased(Folder)
    # Not correlated with the statements it is used in, which may be on folders too.
    going = select(Folder.id).where(*condition).correlate(None)
    with write_transaction() as session:
        session.execute(
            update(File)
            .where(File.trashed_at.is_not(None), File.folder_id.in_(going))
            .values(folder_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Folder)
            .where(
                Folder.trashed_at.is_not(None),
                Folder.parent_id.in_(going),
                Folder.id.not_in(going),
            )
            .values(parent_id=None)
            .execution_options(synchronize_session=False)
        )
        leaves = (
            select(Folder.id)
            .where(
                *condition,
                ~exists().where(child.parent_id == Folder.id),
                ~exists().where(File.folder_id == Folder.id),
            )
            .limit(batch)
            .correlate(None)
        )
        count: int = session.execute(
            delete(Folder)
            .where(Folder.id.in_(leaves.scalar_subquery()))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    return count


# ---- shared --------------------------------------------------------------------------------


def _item_id(raw_id: str) -> str:
    """A canonical UUID; anything else is not in the trash."""
    try:
        return str(uuid.UUID(raw_id))
    except ValueError:
        raise NotFound("not_found", "no such item in the trash") from None


def _is_item(
    model: type[File] | type[Folder], organization_id: int, item_id: str
) -> list[ColumnElement[bool]]:
    """The condition of one item of the trash, not being purged."""
    return [
        in_organization(model, organization_id),
        model.id == item_id,
        model.trashed_at.is_not(None),
        model.trash_root == item_id,
        ~model.purging,
    ]


def _item(organization_id: int, item_id: str) -> File | Folder:
    """The file or folder that is this item of the trash; NotFound otherwise."""
    file = db.session.scalars(select(File).where(*_is_item(File, organization_id, item_id))).first()
    if file is not None:
        return file
    folder = db.session.scalars(
        select(Folder).where(*_is_item(Folder, organization_id, item_id))
    ).first()
    if folder is not None:
        return folder
    raise NotFound("not_found", "no such item in the trash")


def _require_removing(user: User, row: File | Folder) -> None:
    """Refuse a restore or removal to anyone who may not delete the item's files."""
    if isinstance(row, File):
        allowed = policy.may_delete_file(user, row.uploaded_by)
    else:
        uploaders = db.session.scalars(
            select(File.uploaded_by)
            .where(
                in_organization(File, row.organization_id),
                File.trash_root == row.id,
                File.trashed_at.is_not(None),
            )
            .distinct()
        )
        allowed = all(policy.may_delete_file(user, uploader) for uploader in uploaders)
    if not allowed:
        raise NotAllowed("forbidden", "only the uploader or an admin can do this")


def _folder_is_live(organization_id: int, folder_id: str) -> bool:
    """Whether the folder exists and is not in the trash."""
    found = db.session.scalar(
        scoped(Folder, organization_id).with_only_columns(Folder.id).where(Folder.id == folder_id)
    )
    return found is not None


def _organization(organization_id: int) -> Organization:
    org = db.session.get(Organization, organization_id)
    assert org is not None  # an organization whose rows exist
    return org


def _organizations_with_trash() -> list[int]:
    """Every organization whose trash holds something (cross-tenant on purpose: the
    operator's sweep)."""
    found: set[int] = set()
    for model in (File, Folder):
        found.update(
            db.session.scalars(
                select(model.organization_id).where(model.trashed_at.is_not(None)).distinct()
            )
        )
    db.session.rollback()
    return sorted(found)
