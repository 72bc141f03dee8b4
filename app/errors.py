"""One JSON error shape for every failure: {"error": message, "code": snake_case}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, InternalServerError

from . import upload_endpoints
from .extensions import db
from .schemas import InputRejected
from .services.errors import (
    AccountDisabled,
    Conflict,
    DomainError,
    Gone,
    InvalidCredentials,
    InvalidInput,
    NoPreview,
    NotAllowed,
    NotFound,
    QuotaExceeded,
    TooLarge,
)
from .storage import StorageFull, StorageUnavailable

log = logging.getLogger(__name__)

# Codes for statuses raised by Flask/werkzeug rather than by Coffer's own code.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

# Short messages in place of werkzeug's page-oriented ones.
MESSAGES = {
    404: "no such endpoint or object",
    429: "too many attempts; wait a minute and try again",
    500: "internal server error",
}


# The one mapping of the domain's errors to HTTP; a subclass takes its nearest ancestor's.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    DomainError: 400,
    InvalidInput: 400,
    InvalidCredentials: 401,
    AccountDisabled: 403,
    NotAllowed: 403,
    NotFound: 404,
    NoPreview: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    QuotaExceeded: 507,
}


class APIError(HTTPException):
    """An HTTP-only error of a view: a status, a machine code, a message and extra fields.

    `status` is the HTTP status and `error_code` the machine code (what DomainError calls
    `code`).
    """

    def __init__(self, status: int, code: str, message: str, /, **extra: Any) -> None:
        # Positional-only, so an extra field may be named `status`, `code` or `message`.
        super().__init__(description=message)
        self.status = status
        # werkzeug and Flask read an HTTPException's status from its `code` attribute
        # (Flask passes one whose code is None through unhandled); Coffer reads `status`.
        self.code = status
        self.error_code = code
        self.extra = extra


def json_error(status: int, code: str, message: str, /, **extra: Any) -> Response:
    """Build the JSON error response; the request's metrics read its code (a refused
    upload's reason)."""
    g.error_code = code
    response = jsonify({"error": message, "code": code, **extra})
    response.status_code = status
    return response


UNAVAILABLE_MESSAGE = (
    "the service is temporarily unavailable (its session store cannot be reached); "
    "try again shortly"
)
# Seconds a client is asked to wait before trying again while Redis is away.
UNAVAILABLE_RETRY_SECONDS = 15


def redis_unavailable() -> Response:
    """Sessions, login limits and the queue live in Redis: without it, a clean 503 (a page
    for the web app's pages, JSON for everything else)."""
    db.session.rollback()
    if request.blueprint == "web":
        # Rendered without the session: base.html's CSRF token would need the store.
        response = Response(
            render_template(
                "unavailable.html",
                retry=UNAVAILABLE_RETRY_SECONDS,
                # The page asked for, as a path of this site (never `//host`).
                again="/" + request.path.lstrip("/"),
            ),
            503,
            mimetype="text/html",
        )
    else:
        response = json_error(503, "service_unavailable", UNAVAILABLE_MESSAGE)
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
    return response


def handle_redis_error(exc: RedisError) -> Response:
    """Redis unreachable (or timing out) inside a view: 503, logged once."""
    log.error("Redis unavailable on %s %s: %s", request.method, request.path, exc)
    return redis_unavailable()


def handle_http_exception(exc: HTTPException) -> Response:
    """Turn any HTTPException, Coffer's or werkzeug's, into the JSON error shape."""
    original = getattr(exc, "original_exception", None)
    if isinstance(exc, InternalServerError) and isinstance(original, RedisError):
        # Raised outside a view (opening or saving the session): Flask hands it over as a 500.
        return handle_redis_error(original)
    status = exc.status if isinstance(exc, APIError) else exc.code or 500
    if isinstance(exc, APIError):
        response = json_error(status, exc.error_code, exc.description or "", **exc.extra)
    elif isinstance(exc, CSRFError):
        response = json_error(400, "csrf_failed", f"CSRF check failed: {exc.description}")
    else:
        code = HTTP_CODES.get(status, "error")
        if status == 413 and request.endpoint in upload_endpoints.MULTIPART_ENDPOINTS:
            code = "file_too_large"
        message = MESSAGES.get(status) or exc.description or exc.name
        if status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        response = json_error(status, code, message)
    # Keep headers werkzeug attached (Allow on 405, Retry-After on 429, ...).
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    if status == 401:
        response.headers.pop("WWW-Authenticate", None)
    return response


def domain_status(exc: DomainError) -> int:
    """The HTTP status of a domain error."""
    # DomainError itself is in the table, so the search always ends there at the latest.
    return next(DOMAIN_STATUS[cls] for cls in type(exc).__mro__ if cls in DOMAIN_STATUS)


def handle_domain_error(exc: DomainError) -> Response:
    """A rule refused the request: its status, code, message and extra fields."""
    return json_error(domain_status(exc), exc.code, exc.message, **exc.extra)


def handle_unexpected(exc: Exception) -> Response:
    """Log an unhandled error, roll back the session and answer a generic 500."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return handle_http_exception(InternalServerError("internal server error"))


def handle_storage_full(exc: StorageFull) -> Response:
    """The store has no room: 507, and nothing was kept."""
    log.error("no space left to store an upload: %s", exc)
    db.session.rollback()
    return json_error(
        507,
        "insufficient_storage",
        "the server has no disk space left to store this file; nothing was stored",
    )


def handle_storage_unavailable(exc: StorageUnavailable) -> Response:
    """The store cannot be reached or refuses: 503, and nothing was kept."""
    log.error("storage unavailable on %s %s: %s", request.method, request.path, exc)
    db.session.rollback()
    return json_error(503, "storage_unavailable", "file storage is unavailable; try again later")


# The codes Coffer's own validators raise as pydantic error types (app/schemas.py).
INPUT_ERROR_CODES = frozenset({"missing_field", "invalid_field", "invalid_parameter"})


def describe_rejection(exc: InputRejected) -> tuple[str, str, str | None]:
    """The first error as (code, message naming the field, field); field None for the body."""
    error = exc.cause.errors(include_url=False)[0]
    if not error["loc"]:  # the body itself is no JSON object
        return "invalid_json", "the body must be a JSON object", None
    field = str(error["loc"][0])
    code, message = error["type"], error["msg"]
    if code == "missing":
        code, message = "missing_field", "is required"
    elif code not in INPUT_ERROR_CODES:  # a check of pydantic's own, worded by pydantic
        code, message = "invalid_field", f"is not valid: {message}"
    return code, f"{field} {message}", field


def handle_invalid_input(exc: InputRejected) -> Response:
    """400 for the first error: its code and field, and a message that names the field."""
    code, message, field = describe_rejection(exc)
    if field is None:
        return json_error(400, code, message)
    return json_error(400, code, message, field=field)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app."""
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(RedisError, handle_redis_error)
    app.register_error_handler(StorageFull, handle_storage_full)
    app.register_error_handler(StorageUnavailable, handle_storage_unavailable)
    app.register_error_handler(InputRejected, handle_invalid_input)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
