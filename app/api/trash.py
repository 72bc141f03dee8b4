"""Trash endpoints: list the trash, restore an item, delete one for good, empty it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_login import current_user, login_required

from .. import schemas
from ..files import trash
from .contract import (
    E400_WRITE,
    E401,
    E403_ADMIN,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    operation,
    path_parameter,
    query_parameters,
    ref,
    response,
)
from .inputs import parse_query

bp = DocumentedBlueprint("trash", __name__, url_prefix="/api/trash")

ITEM_ID = path_parameter(
    "item_id",
    {"type": "string", "format": "uuid"},
    "The id of a file or folder that is an item of the caller's organization's trash (a "
    "file trashed with its folder is not one: its folder is); a malformed id is 404.",
)
E404_ITEM = error(
    "no such item in the trash (never there, restored, purged or being purged).", "not_found"
)
E403_ITEM = error(
    "the caller may not delete the item's files (neither their uploader nor an admin).",
    "forbidden",
)


def item_body(item: trash.TrashItem) -> schemas.TrashItem:
    """An item of the trash as listed."""
    return schemas.TrashItem(
        id=UUID(item.id),
        kind=item.kind,
        name=item.name,
        path=item.path,
        size=item.size,
        deleted_at=item.deleted_at,
        deleted_by_email=item.deleted_by_email,
        purge_at=item.purge_at,
    )


@bp.get(
    "",
    openapi=operation(
        "listTrash",
        "The trash, newest first: admins see every item, members their own files and the "
        "folders they deleted",
        "trash",
        {
            "200": response("One page.", ref(schemas.TrashList)),
            "400": error("`field` names the parameter.", "invalid_parameter"),
            "401": E401,
        },
        security=READ,
        parameters=query_parameters(schemas.TrashListQuery),
    ),
)
@login_required
def index() -> dict[str, Any]:
    """One page of the trash."""
    query = parse_query(schemas.TrashListQuery)
    page = trash.list_trash(current_user, limit=query.limit, cursor=query.cursor)
    return schemas.TrashList(
        items=[item_body(item) for item in page.items], next_cursor=page.next_cursor
    ).body()


@bp.post(
    "/<uuid:item_id>/restore",
    openapi=operation(
        "restoreFromTrash",
        "Put an item back where it was (or at the top level when that folder is gone)",
        "trash",
        {
            "200": response("Restored.", ref(schemas.RestoredItem)),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ITEM,
            "404": E404_ITEM,
        },
        security=WRITE,
        parameters=[ITEM_ID],
        description="A folder comes back with everything that was deleted with it. A name "
        "taken meanwhile is numbered as `on_conflict=rename` does (`report (2).pdf`).",
    ),
)
@login_required
def restore(item_id: UUID) -> dict[str, Any]:
    """Restore an item of the trash."""
    done = trash.restore(current_user, str(item_id))
    return schemas.RestoredItem(id=UUID(done.id), kind=done.kind, path=done.path).body()


@bp.delete(
    "/<uuid:item_id>",
    openapi=operation(
        "deleteFromTrash",
        "Delete an item of the trash for good: its bytes are removed, its quota freed",
        "trash",
        {
            "204": response("Gone for good."),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ITEM,
            "404": E404_ITEM,
        },
        security=WRITE,
        parameters=[ITEM_ID],
        description="A `file.deleted` event for each of its files.",
    ),
)
@login_required
def delete(item_id: UUID) -> tuple[str, int]:
    """Delete an item of the trash for good."""
    trash.delete_forever(current_user, str(item_id))
    return "", 204


@bp.delete(
    "",
    openapi=operation(
        "emptyTrash",
        "Empty the organization's trash (admin): every item removed for good",
        "trash",
        {
            "204": response("Emptied."),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ADMIN,
        },
        security=WRITE,
        description="A `file.deleted` event for each file removed.",
    ),
)
@login_required
def empty() -> tuple[str, int]:
    """Empty the trash."""
    trash.empty_trash(current_user)
    return "", 204
