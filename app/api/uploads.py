"""Resumable uploads, tus 1.0.0 with creation, creation-with-upload, termination and
expiration: the protocol's headers in and out; the rules are app/services/uploads.py's."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, request
from flask_login import current_user, login_required
from werkzeug.http import http_date

from .. import schemas
from ..errors import APIError
from ..services import files, uploads
from ..services.queue import enqueue_validation
from ..storage import display_name

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")

F = TypeVar("F", bound=Callable[..., Any])

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
PATH_PREFIX = "/api/uploads"
DIGITS = re.compile(r"[0-9]{1,19}")


@bp.after_app_request
def tus_headers(response: Response) -> Response:
    """Every answer under /api/uploads, errors included, names the protocol version."""
    if request.path == PATH_PREFIX or request.path.startswith(PATH_PREFIX + "/"):
        response.headers["Tus-Resumable"] = TUS_VERSION
        if response.status_code == 412:
            response.headers["Tus-Version"] = TUS_VERSION
    return response


def tus_request(view: F) -> F:
    """412 unless the request speaks tus 1.0.0 (checked after authentication)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        sent = request.headers.get("Tus-Resumable")
        if sent != TUS_VERSION:
            raise APIError(
                412,
                "unsupported_version",
                f"send Tus-Resumable: {TUS_VERSION}"
                + (f" (this server does not speak {sent!r})" if sent else ""),
            )
        return view(*args, **kwargs)

    return cast(F, wrapped)


def header_number(name: str) -> int:
    """A header holding a non-negative integer; 400 when it is missing or anything else."""
    raw = request.headers.get(name)
    code = f"invalid_{name.lower().replace('-', '_')}"
    if raw is None:
        raise APIError(400, code, f"the {name} header is required", field=name)
    if not DIGITS.fullmatch(raw.strip()):
        raise APIError(400, code, f"{name} must be a non-negative integer", field=name)
    return int(raw.strip())


def sent_filename(metadata: str) -> str:
    """The display name from Upload-Metadata's `filename` (base64, as tus sends it)."""
    pairs: dict[str, str] = {}
    for item in metadata.split(","):
        key, _, value = item.strip().partition(" ")
        if key:
            pairs[key] = value.strip()
    encoded = pairs.get("filename")
    if not encoded:
        raise APIError(
            400,
            "invalid_filename",
            "Upload-Metadata must carry the file name: filename <base64>",
            field="filename",
        )
    try:
        raw = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise APIError(
            400,
            "invalid_filename",
            "the filename in Upload-Metadata is not base64 of UTF-8 text",
            field="filename",
        ) from None
    return display_name(raw)


def progress_headers(state: uploads.Progress) -> dict[str, str]:
    """Upload-Offset and Upload-Expires (while unfinished) of an upload."""
    headers = {"Upload-Offset": str(state.offset)}
    if not state.completed:
        headers["Upload-Expires"] = http_date(state.expires_at)
    return headers


def body_length() -> int:
    """The request body's declared length (waitress gives chunked bodies one as well)."""
    if request.content_length is None:
        raise APIError(400, "length_required", "send the body with a Content-Length")
    return request.content_length


@bp.route("", methods=["OPTIONS"])
def options() -> tuple[str, int, dict[str, str]]:
    """What this server speaks of tus."""
    return (
        "",
        204,
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(files.max_file_size()),
        },
    )


@bp.route("", methods=["GET"], provide_automatic_options=False)
@login_required
def index() -> dict[str, Any]:
    """The unfinished uploads the caller may see, newest first: an admin's organization's
    all, a member's own. A JSON listing, not a tus request: no Tus-Resumable needed."""
    listed = uploads.list_unfinished(current_user)
    return schemas.UnfinishedUploadList(
        uploads=[schemas.UnfinishedUpload.model_validate(item) for item in listed]
    ).body()


@bp.route("", methods=["POST"], provide_automatic_options=False)
@login_required
@tus_request
def create() -> tuple[str, int, dict[str, str]]:
    """Create an upload; with an offset+octet-stream body, take its first bytes too."""
    length = header_number("Upload-Length")
    metadata = request.headers.get("Upload-Metadata", "")
    state = uploads.create(current_user, length, sent_filename(metadata), metadata)
    headers = {"Location": f"{PATH_PREFIX}/{state.id}"}
    if request.mimetype == OFFSET_CONTENT_TYPE:
        state = uploads.append(current_user, state.id, 0, request.stream, body_length())
        if state.completed:
            enqueue_validation(state.id, state.organization_id)
    headers.update(progress_headers(state))
    if request.mimetype != OFFSET_CONTENT_TYPE:
        headers.pop("Upload-Offset")
    return "", 201, headers


@bp.route("/<file_id>", methods=["HEAD"])
@login_required
@tus_request
def head(file_id: str) -> tuple[str, int, dict[str, str]]:
    """Where an upload stands; a finished one answers its whole length while its file exists."""
    state = uploads.progress(current_user, file_id)
    headers = progress_headers(state)
    headers["Upload-Length"] = str(state.length)
    headers["Cache-Control"] = "no-store"
    if state.metadata:
        headers["Upload-Metadata"] = state.metadata
    return "", 200, headers


@bp.route("/<file_id>", methods=["PATCH"], provide_automatic_options=False)
@login_required
@tus_request
def append(file_id: str) -> tuple[str, int, dict[str, str]]:
    """Add bytes at Upload-Offset; the last byte makes the file `pending` and queues its job."""
    if request.mimetype != OFFSET_CONTENT_TYPE:
        raise APIError(
            415, "unsupported_media_type", f"send the bytes as Content-Type: {OFFSET_CONTENT_TYPE}"
        )
    offset = header_number("Upload-Offset")
    state = uploads.append(current_user, file_id, offset, request.stream, body_length())
    if state.completed:
        enqueue_validation(state.id, state.organization_id)
    return "", 204, progress_headers(state)


@bp.route("/<file_id>", methods=["DELETE"], provide_automatic_options=False)
@login_required
@tus_request
def terminate(file_id: str) -> tuple[str, int]:
    """Remove an unfinished upload (its uploader's or, by an admin, anyone's), its bytes and
    its holding."""
    uploads.terminate(current_user, file_id)
    return "", 204
