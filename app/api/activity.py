"""The activity record: the organization's (admins) and a file's own (members), as JSON
pages or CSV."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response, stream_with_context
from flask_login import current_user, login_required

from .. import schemas
from ..services import activity
from .contract import (
    E401,
    FILE_ID,
    READ,
    DocumentedBlueprint,
    error,
    operation,
    query_parameters,
    ref,
    response,
)
from .inputs import parse_query

bp = DocumentedBlueprint("activity", __name__, url_prefix="/api")

E400_QUERY = error(
    "`field` names the parameter (a cursor made for other parameters too).", "invalid_parameter"
)
CSV_DESCRIPTION = (
    "With `format=csv`: every matching event as `text/csv` (a header row, then newest first; "
    "a cell that a spreadsheet would read as a formula starts with `'`)."
)


def answer(filters: activity.Filters, page: activity.Page) -> dict[str, Any]:
    """A page of events as the API answers it."""
    return schemas.ActivityList.model_validate(
        {"events": [activity.event_json(e) for e in page.events], "next_cursor": page.next_cursor}
    ).body()


def csv_response(organization_id: int, filters: activity.Filters, name: str) -> Response:
    """Every matching event as a CSV attachment, streamed a page at a time."""
    response = Response(
        stream_with_context(activity.export_csv(organization_id, filters)),
        mimetype="text/csv",
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@bp.get(
    "/org/activity",
    openapi=operation(
        "listActivity",
        "The organization's activity record, newest first (admin)",
        "organization",
        {
            "200": response("One page of events (or CSV).", ref(schemas.ActivityList)),
            "400": E400_QUERY,
            "401": E401,
            "403": error("only the organization's admin may do this.", "forbidden"),
        },
        security=READ,
        parameters=query_parameters(schemas.ActivityQuery),
        description=CSV_DESCRIPTION,
    ),
)
@login_required
def organization_activity() -> Any:
    """The organization's events matching the filters."""
    query = parse_query(schemas.ActivityQuery)
    filters = activity.Filters(
        type=query.type,
        actor_id=query.actor_id,
        file_id=str(query.file_id) if query.file_id else None,
    )
    page = activity.organization_events(
        current_user, filters, limit=query.limit, cursor=query.cursor
    )
    if query.format is schemas.ActivityFormat.CSV:
        return csv_response(current_user.organization_id, filters, "activity")
    return answer(filters, page)


@bp.get(
    "/files/<uuid:file_id>/activity",
    openapi=operation(
        "fileActivity",
        "A file's own events, newest first (any member)",
        "files",
        {
            "200": response("One page of events (or CSV).", ref(schemas.ActivityList)),
            "400": E400_QUERY,
            "401": E401,
            "404": error("no such file in the organization.", "not_found"),
        },
        security=READ,
        parameters=[FILE_ID, *query_parameters(schemas.ActivityQuery)],
        description=CSV_DESCRIPTION + " `type`, `actor_id` and `file_id` are not applied here.",
    ),
)
@login_required
def file_activity(file_id: UUID) -> Any:
    """One file's events."""
    query = parse_query(schemas.ActivityQuery)
    filters, page = activity.file_history(
        current_user, str(file_id), limit=query.limit, cursor=query.cursor
    )
    if query.format is schemas.ActivityFormat.CSV:
        return csv_response(current_user.organization_id, filters, "file-activity")
    return answer(filters, page)
