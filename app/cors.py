"""Browser pages on other origins (CORS_ORIGINS) calling /api with a bearer token."""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, request
from flask_cors import CORS

# /api and everything under it (matched from the start, as Flask-Cors does).
API_PATHS = re.compile(r"/api(/|\Z)")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# What the API's and tus's requests carry besides the headers every browser may send. tus's
# Upload-Defer-Length and Upload-Concat, extensions Coffer lacks, are let through so a client
# using them reads Coffer's 400 rather than meeting a refused preflight.
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
    "Upload-Defer-Length",
    "Upload-Concat",
    "X-HTTP-Method-Override",
    "X-Request-ID",
    "X-Requested-With",
)
# The answers' headers a page's script may read: tus's, the download's, the request id.
EXPOSED_HEADERS = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
    "Upload-Metadata",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "ETag",
    "Content-Disposition",
    "Retry-After",
    "X-Request-ID",
)
# Seconds a browser may reuse a preflight's answer (Chromium keeps it two hours at most).
PREFLIGHT_MAX_AGE = 600


def exact(origin: str) -> re.Pattern[str]:
    """An origin matched whole: Flask-Cors would take `[` of an IPv6 origin for a regex, and
    matches a regex's start only."""
    return re.compile(re.escape(origin) + r"\Z", re.IGNORECASE)


def is_listed_preflight() -> bool:
    """Whether the request is a CORS preflight to /api from a listed origin."""
    return (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
        and request.headers.get("Origin", "").lower() in current_app.config["CORS_ORIGINS"]
        and API_PATHS.match(request.path) is not None
    )


def answer_preflight() -> Response | None:
    """A listed origin's preflight answers 204 before anything else runs: an unknown path or
    a route without OPTIONS would answer 404/405, which the browser takes as a refusal."""
    if is_listed_preflight():
        return Response(status=204)
    return None


def vary_on_origin(response: Response) -> Response:
    """Every /api answer depends on Origin once some origins are listed, those without
    Access-Control-Allow-Origin too, so no cache hands one origin's answer to another."""
    if API_PATHS.match(request.path):
        response.vary.add("Origin")
    return response


def init_app(app: Flask) -> None:
    """Answer listed origins' preflights and requests to /api; nothing when none is listed."""
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        return
    CORS(
        app,
        resources={API_PATHS: {}},
        origins=[exact(origin) for origin in origins],
        methods=list(METHODS),
        allow_headers=list(REQUEST_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE,
        # Cross-origin calls carry a bearer token, never the session cookie.
        supports_credentials=False,
        # The default sends every listed origin to requests that carry no Origin.
        always_send=False,
        vary_header=False,
        send_wildcard=False,
    )
    # First of the hooks, before the CSRF, rate-limit and session checks.
    app.before_request_funcs.setdefault(None, []).insert(0, answer_preflight)
    app.after_request(vary_on_origin)
