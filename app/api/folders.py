"""Folder endpoints: create, list, read, rename or move, and delete folders."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_login import current_user, login_required

from .. import schemas
from ..files import folders, trash
from ..files.names import ROOT
from ..models import Folder
from .contract import (
    E401,
    E413_JSON,
    JSON_BODY_CODES,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    link,
    operation,
    path_parameter,
    query_parameters,
    ref,
    response,
    with_links,
)
from .inputs import parse_body, parse_query

bp = DocumentedBlueprint("folders", __name__, url_prefix="/api/folders")

FOLDER_ID = path_parameter(
    "folder_id",
    {"type": "string", "format": "uuid"},
    "A folder of the caller's organization; a malformed id is a folder that does not exist (404).",
)
E404_FOLDER = error("no such folder in the organization.", "not_found")
E400_NAME = (
    "invalid_name",
    *JSON_BODY_CODES,
    "csrf_failed",
)


def place(folder_id: str | None) -> str:
    """A place as the API writes it: a folder id, or `root` for the top level."""
    return ROOT if folder_id is None else folder_id


def folder_body(view: folders.FolderView) -> dict[str, Any]:
    """A folder with its path and breadcrumbs, as GET and PATCH answer it."""
    return schemas.FolderDetails(
        id=UUID(view.id),
        name=view.name,
        parent_id=place(view.parent_id),
        path=view.path,
        created_at=view.created_at,
        breadcrumbs=[schemas.Crumb(id=UUID(c.id), name=c.name) for c in view.breadcrumbs],
    ).body()


def folder_entry(row: Folder) -> schemas.FolderEntry:
    """A folder as listed."""
    return schemas.FolderEntry(
        id=UUID(row.id), name=row.name, parent_id=place(row.parent_id), created_at=row.created_at
    )


@bp.post(
    "",
    openapi=operation(
        "createFolder",
        "Create a folder at the top level or in another folder (any member)",
        "folders",
        {
            "201": with_links(
                response("Created.", ref(schemas.Folder)),
                GetFolder=link("getFolder", folder_id="$response.body#/id"),
            ),
            "400": error(
                "a name that is empty, holds `/`, `\\`, a control character, is `.` or `..` "
                "or is over 255 bytes (`invalid_name`, not cut); a `parent_id` that is not "
                "a string; or a session write without its CSRF token.",
                *E400_NAME,
            ),
            "401": E401,
            "404": error(
                "`parent_id` names no folder of the organization (a malformed id included).",
                "not_found",
            ),
            "409": error(
                "a file or folder of that place has the name (compared NFKC case-folded).",
                "name_taken",
            ),
            "413": E413_JSON,
        },
        security=WRITE,
        body=json_body(schemas.FolderRequest),
    ),
)
@login_required
def create() -> tuple[dict[str, Any], int]:
    """Create a folder."""
    body = parse_body(schemas.FolderRequest)
    view = folders.create_folder(current_user, body.name, body.parent_id)
    return schemas.Folder(
        id=UUID(view.id),
        name=view.name,
        parent_id=place(view.parent_id),
        path=view.path,
        created_at=view.created_at,
    ).body(), 201


@bp.get(
    "",
    openapi=operation(
        "listFolders",
        "The folders directly in one folder, by name",
        "folders",
        {
            "200": response("The folders.", ref(schemas.FolderList)),
            "401": E401,
            "404": error(
                "`parent_id` names no folder of the organization (a malformed id included).",
                "not_found",
            ),
        },
        security=READ,
        parameters=query_parameters(schemas.FolderListQuery),
    ),
)
@login_required
def index() -> dict[str, Any]:
    """The folders directly in one folder (the top level by default), by name."""
    query = parse_query(schemas.FolderListQuery)
    rows = folders.list_folders(current_user.organization_id, query.parent_id)
    return schemas.FolderList(folders=[folder_entry(row) for row in rows]).body()


@bp.get(
    "/<uuid:folder_id>",
    openapi=operation(
        "getFolder",
        "One folder, its path and its breadcrumbs",
        "folders",
        {
            "200": response("The folder.", ref(schemas.FolderDetails)),
            "401": E401,
            "404": E404_FOLDER,
        },
        security=READ,
        parameters=[FOLDER_ID],
    ),
)
@login_required
def details(folder_id: UUID) -> dict[str, Any]:
    """One folder, with its path and breadcrumbs."""
    return folder_body(folders.folder_details(current_user.organization_id, str(folder_id)))


@bp.patch(
    "/<uuid:folder_id>",
    openapi=operation(
        "updateFolder",
        "Rename a folder and/or move it, with everything in it (any member)",
        "folders",
        {
            "200": response("The folder as it now is.", ref(schemas.FolderDetails)),
            "400": error(
                "a bad name (`invalid_name`), a `parent_id` that is not a string, or a "
                "session write without its CSRF token.",
                *E400_NAME,
            ),
            "401": E401,
            "404": error(
                "no such folder, or `parent_id` names no folder of the organization.",
                "not_found",
            ),
            "409": error(
                "`name_taken`: the destination has the name; `folder_cycle`: a move into "
                "the folder itself or a folder below it.",
                "name_taken",
                "folder_cycle",
            ),
            "413": E413_JSON,
        },
        security=WRITE,
        parameters=[FOLDER_ID],
        body=json_body(schemas.FolderChangeRequest),
        description="Absent or null fields keep their value; `{}` changes nothing. Nothing "
        "below the folder is rewritten: it is one change of the folder's own row.",
    ),
)
@login_required
def update(folder_id: UUID) -> dict[str, Any]:
    """Rename and/or move a folder."""
    body = parse_body(schemas.FolderChangeRequest)
    view = folders.update_folder(
        current_user, str(folder_id), name=body.name, parent_raw=body.parent_id
    )
    return folder_body(view)


@bp.delete(
    "/<uuid:folder_id>",
    openapi=operation(
        "deleteFolder",
        "Move a folder and everything below it to the trash",
        "folders",
        {
            "204": response("In the trash."),
            "400": error("a session write without its CSRF token.", "csrf_failed"),
            "401": E401,
            "403": error(
                "a file below is neither the caller's nor may the caller (not an admin) "
                "delete it; nothing was removed.",
                "forbidden",
            ),
            "404": E404_FOLDER,
        },
        security=WRITE,
        parameters=[FOLDER_ID],
        description="Every folder below and every file below them go with it, as one item "
        "of the trash that is restored or deleted for good as a whole (a `file.trashed` "
        "event for each file).",
    ),
)
@login_required
def delete(folder_id: UUID) -> tuple[str, int]:
    """Move a folder and all it holds to the trash."""
    trash.trash_folder(current_user, str(folder_id))
    return "", 204
