"""File endpoints: upload, list, details, rename or move, download, delete; the download
answer that share links give too."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.wrappers import Response as BaseResponse

from .. import schemas
from ..downloads import file_response
from ..errors import APIError
from ..files import access, folders, intake, listing, placement, previews, trash
from ..files.names import ROOT, OnConflict
from ..models import File, FileStatus
from ..multipart import received_file
from ..schemas import validated
from ..services import activity
from .contract import (
    DOWNLOAD_ANSWERS,
    DOWNLOAD_HEADERS,
    E400_WRITE,
    E401,
    E413_JSON,
    FILE_ID,
    JSON_BODY_CODES,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    link,
    operation,
    plain_text_too,
    query_parameter,
    query_parameters,
    ref,
    response,
    with_links,
)
from .inputs import parse_body, parse_query

bp = DocumentedBlueprint("files", __name__, url_prefix="/api/files")

# The upload's form fields read besides the file (csrf_token is the session's business).
OPTIONS = frozenset(schemas.UploadOptions.model_fields)


def file_summary(row: File, uploader_email: str | None) -> schemas.FileSummary:
    """A file as listed."""
    return schemas.FileSummary(
        id=UUID(row.id),
        filename=row.filename,
        size=row.size,
        mime_type=row.mime_type,
        status=FileStatus(row.status),
        uploaded_at=row.uploaded_at,
        uploaded_by_email=uploader_email,
        folder_id=ROOT if row.folder_id is None else row.folder_id,
        uploaded_via_request=row.uploaded_via_request,
        preview=row.preview and row.status == FileStatus.READY,
    )


def file_details(row: File) -> dict[str, Any]:
    """Everything known about one file, as GET /api/files/<id> answers it."""
    summary = file_summary(row, row.uploader.email if row.uploader else None)
    return schemas.FileDetails(
        **dict(summary),
        sha256=row.sha256,
        error_message=row.error_message,
        processed_at=row.processed_at,
        path=folders.file_path(row.organization_id, row.folder_id, row.filename),
        version=row.version,
    ).body()


@bp.post(
    "/upload",
    openapi=operation(
        "uploadFile",
        "Upload a file; answered before validation",
        "files",
        {
            "201": with_links(
                response("Stored and queued for validation.", ref(schemas.Upload)),
                GetFile=link("getFile", file_id="$response.body#/file_id"),
                DownloadFile=link("downloadFile", file_id="$response.body#/file_id"),
                DeleteFile=link("deleteFile", file_id="$response.body#/file_id"),
                CreateShareLink=link("createShareLink", file_id="$response.body#/file_id"),
            ),
            "400": error(
                "no `file` part, a name that is empty once cleaned, an empty file, part "
                "headers that are not UTF-8, more than 100 form parts, a session write "
                "without its CSRF token, or a bad `folder_id` or `on_conflict`.",
                "no_file",
                "invalid_filename",
                "empty_file",
                "invalid_part_header",
                "too_many_parts",
                "csrf_failed",
                "invalid_field",
            ),
            "401": E401,
            "403": error(
                "`on_conflict=replace` onto a file the caller may not change (neither its "
                "uploader nor an admin); nothing was stored.",
                "forbidden",
            ),
            "404": error("`folder_id` names no folder of the organization.", "not_found"),
            "409": error(
                "`on_conflict=fail` and the folder has the name, or `on_conflict=replace` and "
                "a folder has it; nothing was stored.",
                "name_taken",
            ),
            "413": plain_text_too(
                error(
                    "over MAX_FILE_SIZE_MB. A declared "
                    "Content-Length over the limit is refused by the server before the "
                    "body is read, in plain text.",
                    "file_too_large",
                )
            ),
            "507": error(
                "the file (or new version) does not fit in the organization's quota, or the "
                "server's disk is full; a file being replaced keeps its current version.",
                "quota_exceeded",
                "insufficient_storage",
            ),
        },
        security=WRITE,
        body={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": ref(schemas.UploadRequest),
                    "encoding": {"file": {"contentType": "application/octet-stream"}},
                }
            },
        },
    ),
)
@login_required
def upload() -> tuple[dict[str, Any], int]:
    """Receive a file (streamed to disk), record it and queue its validation."""
    upload_file = request.files.get("file")
    if upload_file is None:
        raise APIError(400, "no_file", "send the file as multipart/form-data field 'file'")
    received = received_file(upload_file)
    if received is None:  # pragma: no cover - request class invariant
        raise APIError(500, "internal_error", "upload was not streamed to storage")
    options = validated(
        schemas.UploadOptions,
        {key: value for key, value in request.form.items() if key in OPTIONS and value != ""},
    )
    accepted = intake.accept(
        current_user,
        received,
        # The folder is checked once, in the upload's write transaction (intake.accept).
        folder_id=folders.place_of(options.folder_id),
        on_conflict=OnConflict(options.on_conflict),
    )
    return schemas.Upload(
        file_id=UUID(accepted.file_id),
        filename=accepted.filename,
        size=accepted.size,
        status=FileStatus.PENDING,
        version=accepted.version,
    ).body(), 201


@bp.get(
    "",
    openapi=operation(
        "listFiles",
        "The organization's files, newest first unless sorted (ties by id); one folder's, "
        "or a search by name",
        "files",
        {
            "200": response("One page.", ref(schemas.FileList)),
            "400": error(
                "`field` names the parameter (a cursor made for other parameters too).",
                "invalid_parameter",
            ),
            "401": E401,
            "404": error("`folder_id` names no folder of the organization.", "not_found"),
        },
        security=READ,
        parameters=query_parameters(schemas.FileListQuery),
    ),
)
@login_required
def index() -> dict[str, Any]:
    """The organization's files in the order asked, by page or by cursor; a folder's own, or
    the names containing `q` with their paths."""
    query = parse_query(schemas.FileListQuery)
    result = listing.list_files(
        current_user.organization_id,
        status=query.status,
        limit=query.limit,
        page=query.page,
        cursor=query.cursor,
        folder_id=query.folder_id,
        q=query.q,
        sort=query.sort,
        order=query.order,
    )
    searching = query.q is not None
    return schemas.FileList(
        files=[
            schemas.ListedFile(
                **file_summary(row, email).model_dump(),
                path=result.path_of(row) if searching else None,
            )
            for row, email in result.rows
        ],
        total=result.total,
        page=query.page,
        limit=query.limit,
        pages=listing.page_count(result.total, query.limit),
        next_cursor=result.next_cursor,
    ).body()


# `uuid:` keeps a name like /upload from reading as a file id; a malformed id is a 404.
@bp.get(
    "/<uuid:file_id>",
    openapi=operation(
        "getFile",
        "Everything known about one file",
        "files",
        {
            "200": response("The file.", ref(schemas.FileDetails)),
            "401": E401,
            "404": error("no such file in the organization.", "not_found"),
        },
        security=READ,
        parameters=[FILE_ID],
    ),
)
@login_required
def details(file_id: UUID) -> dict[str, Any]:
    """Everything known about one file."""
    return file_details(access.get_file(current_user.organization_id, str(file_id)))


# How long a browser may show a thumbnail without asking again: a new version's
# previews replace it within this (If-None-Match makes asking again cheap).
THUMBNAIL_MAX_AGE = 60
SIZE = query_parameter(
    "size",
    {"type": "string", "enum": list(previews.SIZES)},
    "`small` (longest side at most 256 px; the default) or `large` (at most 1024 px).",
)


@bp.get(
    "/<uuid:file_id>/thumbnail",
    openapi=operation(
        "getThumbnail",
        "A preview image of a file's content (images and PDFs' first page)",
        "files",
        {
            "200": {
                "description": "The preview, WebP.",
                "headers": {
                    "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
                    "ETag": {"required": True, "schema": {"type": "string"}},
                    "Cache-Control": {"required": True, "schema": {"type": "string"}},
                },
                "content": {"image/webp": {"schema": {"type": "string", "format": "binary"}}},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            "400": error("`size` is neither `small` nor `large`.", "invalid_size"),
            "401": E401,
            "404": error(
                "no such file in the organization (`not_found`), or it has no preview "
                "(`no_preview`: not a ready image or PDF, over PREVIEW_MAX_PIXELS, "
                "undecodable, or not made yet).",
                "not_found",
                "no_preview",
            ),
        },
        security=READ,
        parameters=[FILE_ID, SIZE, DOWNLOAD_HEADERS[1]],
    ),
)
@login_required
def thumbnail(file_id: UUID) -> BaseResponse:
    """A preview image of a file, cached privately and answered 304 when unchanged."""
    preview = previews.read(
        current_user.organization_id, str(file_id), request.args.get("size") or None
    )
    response = Response(preview.data, mimetype=preview.mime_type)
    response.headers["ETag"] = preview.etag
    response.headers["Cache-Control"] = f"private, max-age={THUMBNAIL_MAX_AGE}"
    return response.make_conditional(request.environ)


@bp.patch(
    "/<uuid:file_id>",
    openapi=operation(
        "updateFile",
        "Rename a file and/or move it to another folder (its uploader or an admin)",
        "files",
        {
            "200": response("The file as it now is.", ref(schemas.FileDetails)),
            "400": error(
                "a bad name (`invalid_name`: empty, holds `/`, `\\` or a control "
                "character, `.` or `..`, over 255 bytes; refused, not cut), or a session "
                "write without its CSRF token.",
                "invalid_name",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "403": error("neither the uploader nor an admin.", "forbidden"),
            "404": error(
                "no such file, or `folder_id` names no folder of the organization (a "
                "malformed id included).",
                "not_found",
            ),
            "409": error(
                "a file or folder of the destination has the name (compared NFKC case-folded).",
                "name_taken",
            ),
            "413": E413_JSON,
        },
        security=WRITE,
        parameters=[FILE_ID],
        body=json_body(schemas.FileChangeRequest),
        description="Absent or null fields keep their value. The bytes are never copied. "
        "A file that failed only because its content did not match its extension is "
        "validated again once renamed (`pending`).",
    ),
)
@login_required
def update(file_id: UUID) -> dict[str, Any]:
    """Rename and/or move a file."""
    body = parse_body(schemas.FileChangeRequest)
    row = placement.change_file(
        current_user, str(file_id), filename=body.filename, folder_raw=body.folder_id
    )
    return file_details(row)


@bp.get(
    "/<uuid:file_id>/download",
    openapi=operation(
        "downloadFile",
        "The exact bytes of a ready file, as an attachment",
        "files",
        {
            **DOWNLOAD_ANSWERS,
            "401": E401,
            "404": error("no such file in the organization.", "not_found"),
            "409": response("`not_ready`: pending, processing or failed.", ref(schemas.NotReady)),
            "410": error(
                "the file is ready but its bytes are missing from storage.", "file_missing"
            ),
            "416": error("a well-formed Range entirely outside the file.", "range_not_satisfiable"),
        },
        security=READ,
        parameters=[FILE_ID, *DOWNLOAD_HEADERS],
    ),
)
@login_required
def download(file_id: UUID) -> ResponseReturnValue:
    """The exact bytes of a ready file, as an attachment."""
    row = access.get_ready_file(current_user.organization_id, str(file_id))
    return file_response(
        row,
        activity.download_recorder(
            current_user.organization_id,
            activity.acting(current_user),
            activity.on_file(row.id, row.filename),
        ),
    )


@bp.delete(
    "/<uuid:file_id>",
    openapi=operation(
        "deleteFile",
        "Move a file to the trash (its uploader or an admin)",
        "files",
        {
            "204": response("In the trash."),
            "400": E400_WRITE,
            "401": E401,
            "403": error("neither the uploader nor an admin.", "forbidden"),
            "404": error(
                "no such file in the organization (or already in the trash).", "not_found"
            ),
        },
        security=WRITE,
        parameters=[FILE_ID],
        description="The file leaves every listing and search; its details, downloads and "
        "share links answer 404 until it is restored (POST /api/trash/<id>/restore). Its "
        "bytes still count in `used_bytes` until it is deleted from the trash or purged "
        "`trash_retention_days` later. A `file.trashed` event.",
    ),
)
@login_required
def delete(file_id: UUID) -> tuple[str, int]:
    """Move a file to the trash."""
    trash.trash_file(current_user, str(file_id))
    return "", 204
