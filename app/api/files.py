"""File endpoints: upload, list, details, download, delete."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Blueprint, Response, redirect, request, send_file
from flask_login import current_user, login_required

from app.services.queue import enqueue_validation

from ..errors import APIError
from ..models import File, FileStatus, isoformat
from ..services import files
from ..storage import get_storage
from ..storage.uploads import keep, received_file
from .inputs import int_arg

bp = Blueprint("files", __name__, url_prefix="/api/files")

MAX_PAGE = 10_000_000


def file_summary(row: File, uploader_email: str | None) -> dict[str, Any]:
    """A file as listed."""
    return {
        "id": row.id,
        "filename": row.filename,
        "size": row.size,
        "mime_type": row.mime_type,
        "status": row.status,
        "uploaded_at": isoformat(row.uploaded_at),
        "uploaded_by_email": uploader_email,
    }


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
    return {
        "file_id": row.id,
        "filename": row.filename,
        "size": row.size,
        "status": row.status,
    }, 201


@bp.get("")
@login_required
def index() -> dict[str, Any]:
    """The organization's files, newest first, by page or by cursor."""
    page = int_arg("page", 1, minimum=1, maximum=MAX_PAGE)
    limit = int_arg("limit", 20, minimum=1, maximum=100)
    raw_status = request.args.get("status") or None
    try:
        status = FileStatus(raw_status) if raw_status else None
    except ValueError:
        allowed = ", ".join(s.value for s in FileStatus)
        raise APIError(
            400, "invalid_parameter", f"status must be one of {allowed}", field="status"
        ) from None
    cursor = request.args.get("cursor") or None
    result = files.list_files(
        current_user.organization_id, status=status, limit=limit, page=page, cursor=cursor
    )
    return {
        "files": [file_summary(row, email) for row, email in result.rows],
        "total": result.total,
        "page": page,
        "limit": limit,
        "pages": files.page_count(result.total, limit),
        "next_cursor": result.next_cursor,
    }


# `uuid:` keeps a name like /upload from reading as a file id; a malformed id is a 404.
@bp.get("/<uuid:file_id>")
@login_required
def details(file_id: UUID) -> dict[str, Any]:
    """Everything known about one file."""
    row = files.get_file(current_user.organization_id, str(file_id))
    return {
        **file_summary(row, row.uploader.email if row.uploader else None),
        "sha256": row.sha256,
        "error_message": row.error_message,
        "processed_at": isoformat(row.processed_at),
    }


@bp.get("/<uuid:file_id>/download")
@login_required
def download(file_id: UUID) -> Response:
    """The exact bytes of a ready file, as an attachment."""
    row = files.get_file(current_user.organization_id, str(file_id))
    if row.status != FileStatus.READY:
        raise APIError(409, "not_ready", f"the file is {row.status}, not ready", status=row.status)
    mime_type = row.mime_type or "application/octet-stream"
    url = get_storage().download_url(row.file_path, row.filename, mime_type)
    if url is not None:
        # The store serves the bytes itself; the signed URL expires, so it is not cached.
        response = redirect(url, 302)
        response.headers["Cache-Control"] = "private, no-store"
        return response
    return attachment(row)


def attachment(row: File) -> Response:
    """The stored bytes of a file as an attachment, with ETag, 304 and Range answers.

    werkzeug's send_file writes the headers; the length and the conditional handling are
    set here because a backend's reader is not a file on this disk.
    """
    response = send_file(
        get_storage().open(row.file_path),
        mimetype=row.mime_type or "application/octet-stream",
        as_attachment=True,
        download_name=row.filename,
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.content_length = row.size
    response.last_modified = row.uploaded_at
    response.set_etag(row.sha256 or row.id)
    try:
        response = response.make_conditional(
            request.environ, accept_ranges=True, complete_length=row.size
        )
    except BaseException:
        response.close()  # a 416 is raised: the reader is not handed on
        raise
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.delete("/<uuid:file_id>")
@login_required
def delete(file_id: UUID) -> tuple[str, int]:
    """Delete a file; its bytes leave the disk and the quota at once."""
    files.delete_file(current_user, str(file_id))
    return "", 204
