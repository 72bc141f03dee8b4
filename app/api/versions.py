"""Version endpoints: a file's versions listed, one downloaded, one restored as the newest."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from .. import schemas
from ..downloads import file_response
from ..files import versions
from ..models import MAX_ID, FileStatus
from .contract import (
    DOWNLOAD_ANSWERS,
    DOWNLOAD_HEADERS,
    E400_WRITE,
    E401,
    FILE_ID,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    operation,
    path_parameter,
    ref,
    response,
)

bp = DocumentedBlueprint("versions", __name__, url_prefix="/api/files")

NUMBER = path_parameter(
    "number",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "A version's number (from 1, in upload order).",
)
E404_VERSION = error("no such file in the organization, or no such version of it.", "not_found")


def version_body(info: versions.VersionInfo) -> schemas.Version:
    """One version as the API writes it."""
    return schemas.Version(
        version=info.version,
        size=info.size,
        sha256=info.sha256,
        status=FileStatus(info.status),
        uploaded_at=info.uploaded_at,
        uploaded_by_email=info.uploaded_by_email,
        current=info.current,
    )


@bp.get(
    "/<uuid:file_id>/versions",
    openapi=operation(
        "listVersions",
        "A file's versions, newest first (the one it answers with among them)",
        "versions",
        {
            "200": response("Every version kept.", ref(schemas.VersionList)),
            "401": E401,
            "404": error("no such file in the organization.", "not_found"),
        },
        security=READ,
        parameters=[FILE_ID],
    ),
)
@login_required
def index(file_id: UUID) -> dict[str, Any]:
    """The file's versions, newest first."""
    found = versions.list_versions(current_user, str(file_id))
    return schemas.VersionList(versions=[version_body(info) for info in found]).body()


@bp.get(
    "/<uuid:file_id>/versions/<id:number>/download",
    openapi=operation(
        "downloadVersion",
        "The exact bytes of one ready version of a file, as an attachment",
        "versions",
        {
            **DOWNLOAD_ANSWERS,
            "401": E401,
            "404": E404_VERSION,
            "409": response(
                "`not_ready`: that version is pending, processing or failed.",
                ref(schemas.NotReady),
            ),
            "410": error(
                "the version is ready but its bytes are missing from storage.", "file_missing"
            ),
            "416": error(
                "a well-formed Range entirely outside the version.", "range_not_satisfiable"
            ),
        },
        security=READ,
        parameters=[FILE_ID, NUMBER, *DOWNLOAD_HEADERS],
    ),
)
@login_required
def download(file_id: UUID, number: int) -> ResponseReturnValue:
    """One version's bytes, as the file's own download gives them."""
    return file_response(versions.version_file(current_user, str(file_id), number))


@bp.post(
    "/<uuid:file_id>/versions/<id:number>/restore",
    openapi=operation(
        "restoreVersion",
        "Make a version's content the file's newest version (its uploader or an admin)",
        "versions",
        {
            "201": response(
                "A new newest version with that content, which the file answers with.",
                ref(schemas.Version),
            ),
            "400": E400_WRITE,
            "401": E401,
            "403": error("neither the file's uploader nor an admin.", "forbidden"),
            "404": E404_VERSION,
            "409": response(
                "`not_ready`: that version is pending, processing or failed.",
                ref(schemas.NotReady),
            ),
            "410": error("the version's bytes are missing from storage.", "file_missing"),
            "507": error(
                "the copy does not fit in the organization's quota, or the server's disk is "
                "full; nothing was stored.",
                "quota_exceeded",
                "insufficient_storage",
            ),
        },
        security=WRITE,
        parameters=[FILE_ID, NUMBER],
        description="The bytes are copied to a new version, ready at once (the content was "
        "validated); older versions beyond the organization's `versions_kept` are removed.",
    ),
)
@login_required
def restore(file_id: UUID, number: int) -> tuple[dict[str, Any], int]:
    """Copy a version as the file's newest."""
    info = versions.restore_version(current_user, str(file_id), number)
    return version_body(info).body(), 201
