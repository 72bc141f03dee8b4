"""X-HTTP-Method-Override on an upload's tus URL: a POST carrying it is taken as the method it
names, as tus 1.0.0 asks of servers (tus-js-client's `overridePatchMethod`, for proxies and
browsers that cannot send PATCH)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# An upload's URL, /api/uploads/<id>; nothing else honours the header.
UPLOAD_URL = re.compile(r"/api/uploads/[^/]+\Z")
# The methods an upload's URL answers besides POST; any other value leaves the POST a POST
# (which the URL refuses with 405).
OVERRIDES = frozenset({"HEAD", "PATCH", "DELETE"})


class MethodOverride:
    """WSGI middleware: the method is rewritten before Flask routes the request, so the
    CSRF check, the views and the logs all see the overridden one."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Rewrite REQUEST_METHOD of a POST to an upload URL that names another method."""
        if environ.get("REQUEST_METHOD") == "POST" and UPLOAD_URL.match(
            environ.get("PATH_INFO", "")
        ):
            wanted = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").strip().upper()
            if wanted in OVERRIDES:
                environ["REQUEST_METHOD"] = wanted
        return self.app(environ, start_response)
