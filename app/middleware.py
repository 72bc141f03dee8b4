"""Per-request plumbing: request ids, the access log line, request metrics and security
headers."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from . import metrics

log = logging.getLogger("coffer.access")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # JSON and downloads only: nothing may run, load or frame.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def start_request() -> None:
    """Note the start time and the request id (the client's if well-formed)."""
    g.request_started = time.perf_counter()
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if REQUEST_ID_RE.match(supplied) else uuid.uuid4().hex


HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# The headers as (name, lower-cased name, value), made once.
_HEADERS = tuple((name, name.lower(), value) for name, value in SECURITY_HEADERS.items())
_HEADERS_WITH_HSTS = (*_HEADERS, (HSTS[0], HSTS[0].lower(), HSTS[1]))


def add_security_headers(response: Response, hsts: bool) -> None:
    """Add each security header (and HSTS if asked) the view did not set itself."""
    headers = response.headers
    # One pass over the answer's headers, not a search of them per header.
    present = {name.lower() for name, _ in headers}
    headers.extend(
        [
            (name, value)
            for name, lower, value in (_HEADERS_WITH_HSTS if hsts else _HEADERS)
            if lower not in present
        ]
    )


def finish_request(response: Response) -> Response:
    """Add the security headers and request id, and log one line for the request."""
    add_security_headers(response, hsts=request.is_secure or _production())
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started else None
    duration_ms = round(elapsed * 1000, 1) if elapsed is not None else None
    if elapsed is not None:
        metrics.observe_request(
            request.endpoint, response.status_code, elapsed, g.get("error_code")
        )
    log.info(
        "%s %s %s %sms request_id=%s",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        request_id,
        extra={
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
    return response


def _production() -> bool:
    from flask import current_app

    return bool(current_app.config["APP_ENV"] == "production")


def init_app(app: Flask) -> None:
    """Install the hooks; the start hook runs before every other before_request."""
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)
    app.after_request(finish_request)
