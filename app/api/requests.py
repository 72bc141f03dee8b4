"""Upload-only link endpoints (file requests): make one on a folder, list and revoke them.
The page where a visitor sends files, /r/<secret>, is one of the web app's pages."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_login import current_user, login_required

from .. import schemas
from ..files import file_requests
from ..files.file_requests import Listed
from ..files.names import ROOT
from ..models import MAX_ID
from .contract import (
    E400_WRITE,
    E401,
    E413_JSON,
    JSON_BODY_CODES,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    link,
    operation,
    optional_json_body,
    path_parameter,
    ref,
    response,
    with_links,
)
from .inputs import parse_optional_body

bp = DocumentedBlueprint("requests", __name__)

PLACE = path_parameter(
    "folder_id",
    {"type": "string", "maxLength": 100},
    "A folder of the caller's organization, or `root` for the top level; anything else is "
    "a folder that does not exist (404).",
)
REQUEST_ID = path_parameter(
    "request_id",
    {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    "An upload-only link of the caller's organization.",
)


def request_info(row: Listed) -> schemas.FileRequestInfo:
    """A link as listed, never its secret."""
    return schemas.FileRequestInfo(
        id=row.id,
        folder_id=ROOT if row.folder_id is None else row.folder_id,
        path=row.path,
        created_by_email=row.created_by_email,
        message=row.message,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_files=row.max_files,
        files_received=row.files_received,
        usable=row.usable,
    )


@bp.post(
    "/api/folders/<folder_id>/requests",
    openapi=operation(
        "createFileRequest",
        "Make an upload-only link into a folder (any member); its URL is shown once",
        "requests",
        {
            "201": with_links(
                response(
                    "The link; `url` holds its secret: anyone holding it may send files into "
                    "the folder, and sees none of its other files.",
                    ref(schemas.IssuedFileRequest),
                ),
                RevokeFileRequest=link("revokeFileRequest", request_id="$response.body#/id"),
            ),
            "400": error(
                "the body is not a JSON object of the fields (`expires_in` 60 to 7776000, "
                "`max_files` 1 to 10000, `message` up to 1000 characters), or a session write "
                "lacks its CSRF token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "404": error("no such folder in the organization.", "not_found"),
            "413": E413_JSON,
        },
        security=WRITE,
        parameters=[PLACE],
        body=optional_json_body(schemas.FileRequestRequest),
        description="No body at all takes every default, as `{}` does.",
    ),
)
@login_required
def create(folder_id: str) -> tuple[dict[str, Any], int]:
    """Make an upload-only link; its URL, which holds the secret, is in this answer only."""
    body = parse_optional_body(schemas.FileRequestRequest)
    issued = file_requests.create_request(
        current_user,
        folder_id,
        expires_in=body.expires_in,
        max_files=body.max_files,
        message=body.message,
    )
    return schemas.IssuedFileRequest(
        id=issued.request.id,
        url=file_requests.request_url(issued.secret, request.host_url),
        expires_at=issued.request.expires_at,
        max_files=issued.request.max_files,
    ).body(), 201


@bp.get(
    "/api/org/requests",
    openapi=operation(
        "listFileRequests",
        "Upload-only links: an admin's organization's all, a member's own",
        "requests",
        {
            "200": response(
                "Newest first, spent ones too until revoked; never their secrets.",
                ref(schemas.FileRequestList),
            ),
            "401": E401,
        },
        security=READ,
    ),
)
@login_required
def index() -> dict[str, Any]:
    """The upload-only links the caller may see."""
    listed = file_requests.list_requests(current_user)
    return schemas.FileRequestList(requests=[request_info(row) for row in listed]).body()


@bp.delete(
    "/api/requests/<id:request_id>",
    openapi=operation(
        "revokeFileRequest",
        "Revoke an upload-only link at once (its creator or an admin); its files stay",
        "requests",
        {
            "204": response("Revoked."),
            "400": E400_WRITE,
            "401": E401,
            "403": error("neither the link's creator nor an admin.", "forbidden"),
            "404": error("no such upload-only link in the organization.", "not_found"),
        },
        security=WRITE,
        parameters=[REQUEST_ID],
    ),
)
@login_required
def revoke(request_id: int) -> tuple[str, int]:
    """Revoke an upload-only link at once."""
    file_requests.revoke_request(current_user, request_id)
    return "", 204
