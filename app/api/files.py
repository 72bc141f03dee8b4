"""File endpoints: upload, list, details, download, delete; the download answer that share
links give too."""

from __future__ import annotations

from typing import IO, Any
from uuid import UUID

from flask import Blueprint, Response, redirect, request, send_file
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.http import parse_range_header
from werkzeug.wrappers import Response as BaseResponse

from app.services.queue import enqueue_validation

from .. import metrics, schemas
from ..errors import APIError
from ..models import File, FileStatus
from ..multipart import keep, received_file
from ..services import files
from .inputs import parse_query

bp = Blueprint("files", __name__, url_prefix="/api/files")


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
    )


@bp.post("/upload")
@login_required
def upload() -> tuple[dict[str, Any], int]:
    """Receive a file (streamed to disk), record it and queue its validation."""
    upload_file = request.files.get("file")
    if upload_file is None:
        raise APIError(400, "no_file", "send the file as multipart/form-data field 'file'")
    received = received_file(upload_file)
    if received is None:  # pragma: no cover - request class invariant
        raise APIError(500, "internal_error", "upload was not streamed to storage")
    row = files.create_upload(
        current_user, received.file_id, received.display_name, received.upload
    )
    keep(received)
    enqueue_validation(row.id, row.organization_id)
    return schemas.Upload(
        file_id=UUID(row.id), filename=row.filename, size=row.size, status=FileStatus.PENDING
    ).body(), 201


@bp.get("")
@login_required
def index() -> dict[str, Any]:
    """The organization's files, newest first, by page or by cursor."""
    query = parse_query(schemas.FileListQuery)
    result = files.list_files(
        current_user.organization_id,
        status=query.status,
        limit=query.limit,
        page=query.page,
        cursor=query.cursor,
    )
    return schemas.FileList(
        files=[file_summary(row, email) for row, email in result.rows],
        total=result.total,
        page=query.page,
        limit=query.limit,
        pages=files.page_count(result.total, query.limit),
        next_cursor=result.next_cursor,
    ).body()


# `uuid:` keeps a name like /upload from reading as a file id; a malformed id is a 404.
@bp.get("/<uuid:file_id>")
@login_required
def details(file_id: UUID) -> dict[str, Any]:
    """Everything known about one file."""
    row = files.get_file(current_user.organization_id, str(file_id))
    summary = file_summary(row, row.uploader.email if row.uploader else None)
    return schemas.FileDetails(
        **dict(summary),
        sha256=row.sha256,
        error_message=row.error_message,
        processed_at=row.processed_at,
    ).body()


@bp.get("/<uuid:file_id>/download")
@login_required
def download(file_id: UUID) -> ResponseReturnValue:
    """The exact bytes of a ready file, as an attachment."""
    return file_response(files.get_ready_file(current_user.organization_id, str(file_id)))


def file_response(row: File) -> BaseResponse:
    """A ready file as every download answers it (this endpoint and share links alike): a
    302 to a presigned URL when the backend gives one, else the attachment."""
    url = files.presigned_download(row)
    if url is not None:
        # The store serves the bytes itself; the signed URL expires, so it is not cached.
        response = redirect(url, 302)
        response.headers["Cache-Control"] = "private, no-store"
        return response
    return attachment(row, files.open_bytes(row))


def attachment(row: File, reader: IO[bytes]) -> Response:
    """The stored bytes of a file as an attachment, with ETag, 304 and Range answers.

    werkzeug's send_file writes the headers; the length and the conditional handling are
    set here because a backend's reader is not a file on this disk.
    """
    response = send_file(
        reader,
        mimetype=files.content_type(row),
        as_attachment=True,
        download_name=row.filename,
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.content_length = row.size
    response.last_modified = row.uploaded_at
    response.set_etag(row.sha256 or row.id)
    environ = range_as_read(request.environ, row.size)
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=row.size)
    except BaseException:
        response.close()  # a 416 is raised: the reader is not handed on
        raise
    response.headers["Cache-Control"] = "private, no-cache"
    if request.method == "GET" and response.status_code in (200, 206):
        # What the answer carries; a client that hangs up midway is counted in full.
        metrics.count_bytes_sent(response.content_length or 0)
    return response


def range_as_read(environ: dict[str, Any], length: int) -> dict[str, Any]:
    """The request's environ with its Range header as RFC 9110 (14.2) has it read.

    werkzeug answers 416 to any Range it does not serve; 416 is for a range that starts past
    the end. So a header that does not parse, names another unit or several ranges (werkzeug
    serves one) is dropped, for a 200 with the whole file, and a suffix longer than the file
    asks for all of it.
    """
    header = environ.get("HTTP_RANGE")
    if header is None:
        return environ
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return {key: value for key, value in environ.items() if key != "HTTP_RANGE"}
    start, _end = parsed.ranges[0]
    if start < 0 and -start > length:
        return {**environ, "HTTP_RANGE": f"bytes=-{length}"}
    return environ


@bp.delete("/<uuid:file_id>")
@login_required
def delete(file_id: UUID) -> tuple[str, int]:
    """Delete a file; its bytes leave the disk and the quota at once."""
    files.delete_file(current_user, str(file_id))
    return "", 204
