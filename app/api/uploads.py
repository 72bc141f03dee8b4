"""Resumable uploads, tus 1.0.0 with creation, creation-with-upload, termination and
expiration: the protocol's headers in and out; the rules are app/files/resumable.py's."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, request
from flask_login import current_user, login_required
from werkzeug.http import http_date

from .. import schemas
from ..errors import APIError
from ..files import intake, resumable
from ..files.names import OnConflict
from ..schemas import validated
from ..storage import display_name
from .contract import (
    E400_WRITE,
    E401,
    E404_UPLOAD,
    E412_TUS,
    EXPIRES_DESCRIPTION,
    NUMBER,
    OFFSET_BODY,
    PUBLIC,
    READ,
    TUS_RESUMABLE,
    UPLOAD_EXPIRES,
    UPLOAD_ID,
    UPLOAD_OFFSET,
    WRITE,
    DocumentedBlueprint,
    header,
    header_parameter,
    operation,
    plain_text_too,
    ref,
    response,
    tus_error,
    tus_response,
)

bp = DocumentedBlueprint("uploads", __name__, url_prefix="/api/uploads")

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


def metadata_pairs(metadata: str) -> dict[str, str]:
    """Upload-Metadata's pairs, each value still base64 as tus sends it."""
    pairs: dict[str, str] = {}
    for item in metadata.split(","):
        key, _, value = item.strip().partition(" ")
        if key:
            pairs[key] = value.strip()
    return pairs


def decoded(encoded: str, field: str, code: str, *, strict: bool = True) -> str:
    """A metadata value: base64 of UTF-8 text, else 400 `code`; not `strict`, bytes that
    are no UTF-8 are read as replacement characters instead."""
    try:
        raw = base64.b64decode(encoded, validate=True)
        return raw.decode("utf-8") if strict else raw.decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        raise APIError(
            400,
            code,
            f"the {field} in Upload-Metadata is not base64 of UTF-8 text",
            field=field,
        ) from None


def sent_filename(metadata: str) -> str:
    """The display name from Upload-Metadata's `filename` (base64, as tus sends it)."""
    encoded = metadata_pairs(metadata).get("filename")
    if not encoded:
        raise APIError(
            400,
            "invalid_filename",
            "Upload-Metadata must carry the file name: filename <base64>",
            field="filename",
        )
    return display_name(decoded(encoded, "filename", "invalid_filename"))


def sent_options(metadata: str) -> schemas.UploadOptions:
    """Upload-Metadata's `folder_id` and `on_conflict` (base64, as tus sends them); a key
    without a value, or with an empty one, counts as absent."""
    pairs = metadata_pairs(metadata)
    values = {
        # A folder id that is no text names no folder (404), as any other unknown id.
        key: decoded(pairs[key], key, "invalid_field", strict=key != "folder_id")
        for key in schemas.UploadOptions.model_fields
        if pairs.get(key)
    }
    return validated(schemas.UploadOptions, {k: v for k, v in values.items() if v != ""})


def progress_headers(state: resumable.Progress) -> dict[str, str]:
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


@bp.route(
    "",
    methods=["OPTIONS"],
    openapi=operation(
        "tusOptions",
        "What the server speaks of tus",
        "uploads",
        {
            "204": tus_response(
                "The protocol's version, extensions and the largest upload.",
                **{
                    "Tus-Version": header({"type": "string"}, "Versions spoken: 1.0.0."),
                    "Tus-Extension": header(
                        {"type": "string"},
                        "creation,creation-with-upload,termination,expiration",
                    ),
                    "Tus-Max-Size": header(NUMBER, "MAX_FILE_SIZE_MB in bytes."),
                },
            )
        },
        security=PUBLIC,
    ),
)
def options() -> tuple[str, int, dict[str, str]]:
    """What this server speaks of tus."""
    return (
        "",
        204,
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(intake.max_file_size()),
        },
    )


@bp.route(
    "",
    methods=["GET"],
    provide_automatic_options=False,
    openapi=operation(
        "listUploads",
        "Unfinished resumable uploads: an admin's organization's all, a member's own",
        "uploads",
        {
            "200": response(
                "Unfinished, unexpired uploads, newest first.",
                ref(schemas.UnfinishedUploadList),
            ),
            "401": E401,
        },
        security=READ,
        description="A JSON listing, not a tus request: it needs no Tus-Resumable. An "
        "admin may terminate any of them; only its uploader may send its bytes.",
    ),
)
@login_required
def index() -> dict[str, Any]:
    """The unfinished uploads the caller may see, newest first: an admin's organization's
    all, a member's own. A JSON listing, not a tus request: no Tus-Resumable needed."""
    listed = resumable.list_unfinished(current_user)
    return schemas.UnfinishedUploadList(
        uploads=[schemas.UnfinishedUpload.model_validate(item) for item in listed]
    ).body()


@bp.route(
    "",
    methods=["POST"],
    provide_automatic_options=False,
    openapi=operation(
        "createUpload",
        "Begin a resumable upload; its whole length is held against the quota",
        "uploads",
        {
            "201": tus_response(
                "Created; with a body, its bytes are stored at once.",
                Location=header(
                    {"type": "string", "pattern": "^/api/uploads/"},
                    "/api/uploads/<file_id>: where to send the bytes.",
                ),
                **{"Upload-Expires": header({"type": "string"}, EXPIRES_DESCRIPTION)},
            ),
            "400": tus_error(
                "Upload-Length missing, not a number or 0; no `filename` in Upload-Metadata, "
                "not base64 of UTF-8, or empty once cleaned; a body without Content-Length; "
                "a session write without its CSRF token; or a bad `folder_id` or "
                "`on_conflict`.",
                "invalid_upload_length",
                "invalid_filename",
                "empty_file",
                "length_required",
                "incomplete_body",
                "csrf_failed",
                "invalid_field",
            ),
            "401": E401,
            "403": tus_error(
                "`on_conflict=replace` onto a file the caller may not change (neither its "
                "uploader nor an admin); nothing was held.",
                "forbidden",
            ),
            "404": tus_error("`folder_id` names no folder of the organization.", "not_found"),
            "409": tus_error(
                "`on_conflict=fail` and the folder has the name, or `on_conflict=replace` "
                "and a folder has it; nothing was held.",
                "name_taken",
            ),
            "412": E412_TUS,
            "413": plain_text_too(
                tus_error(
                    "Upload-Length over MAX_FILE_SIZE_MB, or a body past Upload-Length.",
                    "file_too_large",
                    "past_upload_length",
                    "payload_too_large",
                )
            ),
            "507": tus_error(
                "the upload does not fit in the organization's quota, with every unfinished "
                "upload's holding counted, or the server's disk is full.",
                "quota_exceeded",
                "insufficient_storage",
            ),
        },
        security=WRITE,
        parameters=[
            TUS_RESUMABLE,
            header_parameter(
                "Upload-Length",
                {"type": "string", "pattern": "^[1-9][0-9]{0,14}$"},
                "The file's size in bytes (at least 1).",
            ),
            header_parameter(
                "Upload-Metadata",
                {
                    "type": "string",
                    "pattern": "^filename (?:[A-Za-z0-9+/]{4})*"
                    "(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)"
                    "(?:,folder_id (?:[A-Za-z0-9+/]{4})*"
                    "(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==))?"
                    # base64 of `rename`, `fail` and `replace`
                    "(?:,on_conflict (?:cmVuYW1l|ZmFpbA==|cmVwbGFjZQ==))?$",
                },
                "`filename <base64 of the UTF-8 name>`, as tus writes metadata; "
                "optionally `folder_id` (a folder id or `root`; anything else is 404) and "
                "`on_conflict` (`rename`, the default, `fail`, or `replace`: a file of that "
                "name gets the upload as a new version), base64 too. The folder and, "
                "with `fail` or `replace`, the name are checked at creation; a name taken by "
                "the time the last byte arrives is numbered as `rename` does (with "
                "`replace`, a file's name takes the version).",
            ),
        ],
        body={"required": False, **OFFSET_BODY},
        description="creation-with-upload: a body of type application/offset+octet-stream "
        "is the upload's first bytes, and the answer carries Upload-Offset.",
    ),
)
@login_required
@tus_request
def create() -> tuple[str, int, dict[str, str]]:
    """Create an upload; with an offset+octet-stream body, take its first bytes too."""
    length = header_number("Upload-Length")
    metadata = request.headers.get("Upload-Metadata", "")
    display = sent_filename(metadata)
    options = sent_options(metadata)
    state = resumable.create(
        current_user,
        length,
        display,
        metadata,
        folder_raw=options.folder_id,
        on_conflict=OnConflict(options.on_conflict),
    )
    headers = {"Location": f"{PATH_PREFIX}/{state.id}"}
    if request.mimetype == OFFSET_CONTENT_TYPE:
        state = resumable.append(current_user, state.id, 0, request.stream, body_length())
    headers.update(progress_headers(state))
    if request.mimetype != OFFSET_CONTENT_TYPE:
        headers.pop("Upload-Offset")
    return "", 201, headers


@bp.route(
    "/<file_id>",
    methods=["HEAD"],
    openapi=operation(
        "getUploadOffset",
        "Where an upload stands",
        "uploads",
        {
            "200": tus_response(
                "The offset to resume from. A finished upload answers its whole length "
                "while its file exists.",
                **{
                    "Upload-Offset": UPLOAD_OFFSET,
                    "Upload-Length": header(NUMBER, "The upload's size."),
                    "Upload-Expires": UPLOAD_EXPIRES,
                    "Upload-Metadata": {"schema": {"type": "string"}},
                    "Cache-Control": header({"type": "string", "const": "no-store"}, "-"),
                },
            ),
            "401": E401,
            "404": E404_UPLOAD,
            "412": E412_TUS,
        },
        security=READ,
        parameters=[UPLOAD_ID, TUS_RESUMABLE],
    ),
)
@login_required
@tus_request
def head(file_id: str) -> tuple[str, int, dict[str, str]]:
    """Where an upload stands; a finished one answers its whole length while its file exists."""
    state = resumable.progress(current_user, file_id)
    headers = progress_headers(state)
    headers["Upload-Length"] = str(state.length)
    headers["Cache-Control"] = "no-store"
    if state.metadata:
        headers["Upload-Metadata"] = state.metadata
    return "", 200, headers


@bp.route(
    "/<file_id>",
    methods=["PATCH"],
    provide_automatic_options=False,
    openapi=operation(
        "appendToUpload",
        "Send bytes from Upload-Offset; the last byte makes the file, pending",
        "uploads",
        {
            "204": tus_response(
                "Stored; the upload's new offset. At Upload-Length the file <file_id> "
                "exists, `pending`, and is validated as any upload.",
                **{"Upload-Offset": UPLOAD_OFFSET, "Upload-Expires": UPLOAD_EXPIRES},
            ),
            "400": tus_error(
                "Upload-Offset missing or not a number, a body without Content-Length, or "
                "a session write without its CSRF token.",
                "invalid_upload_offset",
                "length_required",
                "incomplete_body",
                "csrf_failed",
            ),
            "401": E401,
            "403": tus_error(
                "an admin's PATCH to an upload another user started: only its uploader "
                "sends its bytes.",
                "forbidden",
            ),
            "404": E404_UPLOAD,
            "409": tus_error(
                "Upload-Offset is not the server's (HEAD for it), or another PATCH holds "
                "the upload.",
                "offset_mismatch",
                "upload_locked",
            ),
            "412": E412_TUS,
            "413": plain_text_too(
                tus_error(
                    "the body goes past Upload-Length.",
                    "past_upload_length",
                    "payload_too_large",
                )
            ),
            "415": tus_error(
                "the body is not application/offset+octet-stream.", "unsupported_media_type"
            ),
            "507": tus_error("the server's disk is full.", "insufficient_storage"),
        },
        security=WRITE,
        parameters=[
            UPLOAD_ID,
            TUS_RESUMABLE,
            header_parameter(
                "Upload-Offset", NUMBER, "Where these bytes start: the server's offset."
            ),
        ],
        body={"required": True, **OFFSET_BODY},
        description="Send at most about 8 MiB per PATCH: the server takes a request only "
        "once its whole body has arrived, so a dropped connection loses that PATCH.",
    ),
)
@login_required
@tus_request
def append(file_id: str) -> tuple[str, int, dict[str, str]]:
    """Add bytes at Upload-Offset; the last byte makes the file `pending` and queues its job."""
    if request.mimetype != OFFSET_CONTENT_TYPE:
        raise APIError(
            415, "unsupported_media_type", f"send the bytes as Content-Type: {OFFSET_CONTENT_TYPE}"
        )
    offset = header_number("Upload-Offset")
    state = resumable.append(current_user, file_id, offset, request.stream, body_length())
    return "", 204, progress_headers(state)


@bp.route(
    "/<file_id>",
    methods=["DELETE"],
    provide_automatic_options=False,
    openapi=operation(
        "terminateUpload",
        "Remove an unfinished upload (its uploader or an admin); its bytes go and its "
        "holding is freed",
        "uploads",
        {
            "204": tus_response("Terminated."),
            "400": E400_WRITE,
            "401": E401,
            "404": E404_UPLOAD,
            "409": tus_error("a PATCH is writing to the upload.", "upload_locked"),
            "412": E412_TUS,
        },
        security=WRITE,
        parameters=[UPLOAD_ID, TUS_RESUMABLE],
    ),
)
@login_required
@tus_request
def terminate(file_id: str) -> tuple[str, int]:
    """Remove an unfinished upload (its uploader's or, by an admin, anyone's), its bytes and
    its holding."""
    resumable.terminate(current_user, file_id)
    return "", 204
