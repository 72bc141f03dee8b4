"""Zip downloads: a folder (or the top level) and everything below it, or a selection of
files and folders, streamed as the archive is built."""

from __future__ import annotations

from flask import Response, stream_with_context
from flask_login import current_user, login_required

from .. import schemas
from ..content_disposition import attachment
from ..files import archive
from .contract import (
    E401,
    E413_JSON,
    JSON_BODY_CODES,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    operation,
    path_parameter,
)
from .inputs import parse_body

bp = DocumentedBlueprint("archives", __name__, url_prefix="/api")

FOLDER_ID = path_parameter(
    "folder_id",
    {"type": "string", "anyOf": [{"format": "uuid"}, {"const": "root"}]},
    "A folder of the caller's organization, or `root` for the top level; anything else is a "
    "folder that does not exist (404).",
)
ZIP_ANSWER = {
    "description": "A zip of every ready file below, with its path inside the folder; sent as "
    "it is built (chunked, no Content-Length). Entries are stored, not compressed. Names are "
    "made safe for every OS's unzip (Windows' reserved characters and device names, trailing "
    "dots and spaces, control characters and over-long names replaced or cut; names that "
    "would then clash get ` (2)`...). A file whose bytes are missing from storage is left out "
    "(and logged); an error while the archive is sent cuts the stream short, leaving no valid "
    "zip.",
    "headers": {
        "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
        "Content-Disposition": {
            "required": True,
            "schema": {"type": "string", "pattern": "^attachment;"},
            "description": "`attachment`, named after the folder (the organization for "
            "`root`; `selection.zip` for a selection).",
        },
    },
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
}


def zip_response(built: archive.Archive) -> Response:
    """The archive as an attachment, streamed with the request's context (its pages of
    files are read as the stream goes)."""
    response = Response(
        stream_with_context(built.chunks), mimetype="application/zip", direct_passthrough=True
    )
    response.headers["Content-Disposition"] = attachment(built.name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get(
    "/folders/<folder_id>/download",
    openapi=operation(
        "downloadFolder",
        "A folder and everything below it as a zip, streamed",
        "files",
        {
            "200": ZIP_ANSWER,
            "401": E401,
            "404": error("no such folder in the organization.", "not_found"),
        },
        security=READ,
        parameters=[FOLDER_ID],
    ),
)
@login_required
def download_folder(folder_id: str) -> Response:
    """Every ready file below the folder, at every depth, as a zip."""
    return zip_response(archive.folder_archive(current_user.organization_id, folder_id))


@bp.post(
    "/files/archive",
    openapi=operation(
        "downloadSelection",
        "Selected files and folders as one zip, streamed",
        "files",
        {
            "200": ZIP_ANSWER,
            "400": error(
                "the body is not a JSON object of the fields, or names more than "
                f"{archive.MAX_SELECTION} files or folders; or a session write lacks its CSRF "
                "token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "404": error("an id that is not a file or folder of the organization.", "not_found"),
            "413": E413_JSON,
        },
        security=WRITE,
        body=json_body(schemas.ArchiveRequest),
        description="Selected files are at the top of the zip (those not ready are left "
        "out); each selected folder is a folder of the zip with every ready file below it. "
        "A file is in the zip once, however often it is selected.",
    ),
)
@login_required
def download_selection() -> Response:
    """The selected files and folders as one zip."""
    body = parse_body(schemas.ArchiveRequest)
    built = archive.selection_archive(current_user.organization_id, body.file_ids, body.folder_ids)
    return zip_response(built)
