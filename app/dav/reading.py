"""A WebDAV GET or HEAD of a file, answered before WsgiDAV by the builder every download
uses (app/downloads.py): the file is handed to the server (waitress's `wsgi.file_wrapper`)
rather than streamed through WsgiDAV's generators, with the API's Range, ETag and 304
answers and its redirect to a presigned URL when the store gives one. Collections, lock-null
resources and every other method stay WsgiDAV's."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response
from wsgidav import util
from wsgidav.dav_error import DAVError
from wsgidav.dav_provider import DAVProvider

from ..downloads import Download, download_response
from ..services import activity
from .provider import Document, user

# Conditions werkzeug does not evaluate (If-Match, If-Unmodified-Since) or that are
# WebDAV's own (`If`, naming lock tokens): a request carrying one is left to WsgiDAV.
WSGIDAV_CONDITIONS = ("HTTP_IF", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")


def takes(environ: dict[str, Any]) -> bool:
    """Whether the request is a plain GET or HEAD this module may answer (no body, no
    Depth but 0, none of the conditions only WsgiDAV evaluates)."""
    return (
        environ["REQUEST_METHOD"] in ("GET", "HEAD")
        and environ.get("HTTP_DEPTH", "0") == "0"
        and environ.get("CONTENT_LENGTH", "") in ("", "0")
        and "HTTP_TRANSFER_ENCODING" not in environ
        and not any(name in environ for name in WSGIDAV_CONDITIONS)
    )


def file_answer(provider: DAVProvider, environ: dict[str, Any]) -> Response | None:
    """The answer to a GET or HEAD of a file the member sees (their own upload being
    validated included), or None for anything else (WsgiDAV answers it). A GET is
    recorded as a download once its bytes have gone out."""
    if not takes(environ):
        return None
    try:
        # The path as WsgiDAV reads it: UTF-8, dot segments resolved.
        path = util.normalize_path(util.re_encode_wsgi(environ.get("PATH_INFO", "")))
    except (UnicodeError, DAVError):
        return None
    found = provider.get_resource_inst(path, {**environ, "wsgidav.provider": provider})
    if not isinstance(found, Document):
        return None
    entry = found.entry
    member = user()
    download = Download(
        file_id=entry.id,
        key=entry.key,
        filename=entry.name,
        size=entry.size,
        # WebDAV's getetag, so that If-None-Match with it gives 304.
        etag=found.get_etag(),
        modified=entry.modified,
        mime_type=entry.mime_type,
    )
    return download_response(
        download,
        activity.download_recorder(
            member.organization_id,
            activity.acting(member),
            activity.on_file(entry.id, entry.name),
        ),
    )
