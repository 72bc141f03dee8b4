"""/s/<secret> for people: a browser's navigation (its Accept prefers HTML to bytes and to
JSON) is answered by the link's page, `/s/<secret>/page`; `?download=1`, HEAD and every
other client (curl, API clients: `*/*` or no Accept) get the bytes from the API's view. The
choice is made before Flask routes the request, so the page is an ordinary view of the web
app with its own limits, headers and errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# A share link's own URL; its preview and page (one more segment) are left as they are.
SHARE_URL = re.compile(r"/s/[^/]+\Z")
PAGE = "/page"
# What /s/<secret> can answer, the bytes first: a tie (`*/*`) goes to the bytes.
OFFERED = ["application/octet-stream", "application/json", "text/html"]


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks HTML above bytes and JSON (a browser's navigation)."""
    return parse_accept_header(accept or "", MIMEAccept).best_match(OFFERED) == "text/html"


def wants_page(environ: WSGIEnvironment) -> bool:
    """Whether a request to a share link's URL is a person's visit rather than a download."""
    if environ.get("REQUEST_METHOD") != "GET":
        return False
    if not SHARE_URL.match(environ.get("PATH_INFO", "")):
        return False
    if "download" in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        return False
    return prefers_html(environ.get("HTTP_ACCEPT"))


class ShareNegotiation:
    """WSGI middleware: a browser's visit to /s/<secret> is routed to /s/<secret>/page."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Rewrite PATH_INFO of a visit, leave every other request untouched."""
        if not SHARE_URL.match(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        if wants_page(environ):
            environ["PATH_INFO"] = environ["PATH_INFO"] + PAGE

        def varied(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # The same URL answers a page or the bytes by the Accept header: a cache
            # between must keep them apart.
            headers.append(("Vary", "Accept"))
            return start_response(status, headers, exc_info)

        return self.app(environ, varied)
