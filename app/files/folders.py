"""Folders: finding them, their paths and their trees; the use cases that create, rename,
move and remove them build on these.

A folder is a row (organization, parent, name); the top level, `root`, has no row and is
None here. Paths are never stored: a folder's is its ancestors' names, read by one
recursive query, so moving or renaming a folder of any size is one UPDATE.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import CTE, literal, select

from ..extensions import db
from ..models import Folder
from ..services.errors import NotFound
from ..services.tenancy import get_scoped_or_404, in_organization, scoped
from .names import ROOT


@dataclass(frozen=True)
class Crumb:
    """One step of a folder's breadcrumbs."""

    id: str
    name: str


def place_of(raw_id: str | None) -> str | None:
    """The folder id a request names, None for the top level (`root`, or nothing); NotFound
    for anything that is not a folder id."""
    if raw_id is None or raw_id == ROOT:
        return None
    try:
        return str(uuid.UUID(raw_id))
    except ValueError:
        raise NotFound("not_found", "folder not found") from None


def get_folder(organization_id: int, raw_id: str, *, for_update: bool = False) -> Folder:
    """One of the organization's folders, or NotFound (another organization's included)."""
    folder_id = place_of(raw_id)
    if folder_id is None:
        raise NotFound("not_found", "the top level is not a folder row")
    return get_scoped_or_404(
        Folder, folder_id, organization_id, what="folder", for_update=for_update
    )


def check_place(organization_id: int, raw_id: str | None) -> str | None:
    """The place a request names, checked to be the organization's: None for the top level,
    else the folder's id; NotFound for another organization's or a missing folder."""
    folder_id = place_of(raw_id)
    if folder_id is not None:
        get_scoped_or_404(Folder, folder_id, organization_id, what="folder")
    return folder_id


def children(organization_id: int, parent_id: str | None) -> list[Folder]:
    """The folders directly in a place, by name."""
    query = scoped(Folder, organization_id).where(
        Folder.parent_id.is_(None) if parent_id is None else Folder.parent_id == parent_id
    )
    return list(db.session.scalars(query.order_by(Folder.name_key, Folder.id)))


def ancestry(organization_id: int, folder_ids: Iterable[str]) -> CTE:
    """Each given folder with each of its ancestors (itself at depth 0): (start, id, name,
    parent_id, depth)."""
    starts = list(folder_ids)
    seed = select(
        Folder.id.label("start"),
        Folder.id.label("id"),
        Folder.name.label("name"),
        Folder.parent_id.label("parent_id"),
        literal(0).label("depth"),
    ).where(in_organization(Folder, organization_id), Folder.id.in_(starts))
    tree = seed.cte("ancestry", recursive=True)
    step = select(
        tree.c.start,
        Folder.id,
        Folder.name,
        Folder.parent_id,
        (tree.c.depth + 1).label("depth"),
    ).join(tree, Folder.id == tree.c.parent_id)
    return tree.union_all(step)


def breadcrumbs(organization_id: int, folder_id: str) -> list[Crumb]:
    """The folders from the top level down to this one (itself last)."""
    tree = ancestry(organization_id, [folder_id])
    rows = db.session.execute(select(tree.c.id, tree.c.name).order_by(tree.c.depth.desc())).all()
    return [Crumb(id=row.id, name=row.name) for row in rows]


def paths_of(organization_id: int, folder_ids: Iterable[str | None]) -> dict[str | None, str]:
    """The path of each place: `/A/B` for a folder, `` for the top level (so a file's path
    is always `<folder's path>/<name>`)."""
    wanted = {folder_id for folder_id in folder_ids if folder_id is not None}
    paths: dict[str | None, str] = {None: ""}
    if not wanted:
        return paths
    tree = ancestry(organization_id, wanted)
    rows = db.session.execute(
        select(tree.c.start, tree.c.name).order_by(tree.c.start, tree.c.depth.desc())
    ).all()
    for start, name in rows:
        paths[start] = f"{paths.get(start, '')}/{name}"
    return paths


def path_of(organization_id: int, folder_id: str | None) -> str:
    """One place's path (see paths_of)."""
    return paths_of(organization_id, [folder_id])[folder_id]


def subtree(organization_id: int, folder_id: str) -> CTE:
    """The folder and every folder below it, at every depth: (id, depth)."""
    seed = select(Folder.id.label("id"), literal(0).label("depth")).where(
        in_organization(Folder, organization_id), Folder.id == folder_id
    )
    tree = seed.cte("subtree", recursive=True)
    step = select(Folder.id, (tree.c.depth + 1).label("depth")).join(
        tree, Folder.parent_id == tree.c.id
    )
    return tree.union_all(step)


def is_below(organization_id: int, folder_id: str, ancestor_id: str) -> bool:
    """Whether `folder_id` is `ancestor_id` or inside it (a move there would be a cycle)."""
    tree = subtree(organization_id, ancestor_id)
    return db.session.scalar(select(tree.c.id).where(tree.c.id == folder_id)) is not None
