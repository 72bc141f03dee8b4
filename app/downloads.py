"""A file's bytes as every download answers them: the API's download, a version's, a share
link's and a WebDAV GET or HEAD of a file all build their answer here (a presigned redirect
when the store gives one, else the attachment with ETag, 304 and Range answers, handed to
the server as a file so that waitress sends it without copying it through a generator).

HTTP plumbing beside the views (as content_disposition.py is): the API and WebDAV both call
it, neither calls the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

from flask import Response, redirect, request, send_file
from werkzeug.http import parse_range_header
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import wrap_file

from . import metrics
from .files import access
from .models import File
from .services.content import served_type


@dataclass(frozen=True)
class Download:
    """The bytes a download sends and what its answer says of them."""

    # The file's id (named in the log when its bytes are missing).
    file_id: str
    key: str
    filename: str
    size: int
    etag: str
    modified: datetime
    # The validated type; None for bytes not yet validated (served as octet-stream).
    mime_type: str | None

    @classmethod
    def of_file(cls, row: File) -> Download:
        """A ready file's (or a version's) bytes, as the API serves them."""
        return cls(
            file_id=row.id,
            key=row.file_path,
            filename=row.filename,
            size=row.size,
            etag=row.sha256 or row.id,
            modified=row.uploaded_at,
            mime_type=row.mime_type,
        )


def file_response(row: File, sent: Callable[[], None] | None = None) -> BaseResponse:
    """A ready file as the API's downloads answer it (see `download_response`)."""
    return download_response(Download.of_file(row), sent)


def download_response(download: Download, sent: Callable[[], None] | None = None) -> BaseResponse:
    """Bytes as every download answers them: a 302 to a presigned URL when the backend gives
    one, else the attachment. `sent` is called once the bytes of a download (a GET answered
    whole, or from its first byte) have gone out."""
    content_type = served_type(download.mime_type)
    url = access.presigned_download(download.key, download.filename, content_type)
    if url is not None:
        # The store serves the bytes itself; the signed URL expires, so it is not cached.
        response = redirect(url, 302)
        response.headers["Cache-Control"] = "private, no-store"
        if sent is not None and request.method == "GET":
            sent()
        return response
    reader = access.open_stored(download.key, download.file_id)
    if sent is None:
        return attachment(download, content_type, reader)
    watched = SentReader(reader)
    # It reads as the reader it wraps; send_file needs no more of a file object.
    response = attachment(download, content_type, cast(IO[bytes], watched))
    ranged = request.headers.get("Range", "").replace(" ", "")
    if request.method == "GET" and (
        response.status_code == 200
        or (response.status_code == 206 and ranged.startswith("bytes=0-"))
    ):
        watched.on_close = sent
    return response


class SentReader:
    """A file's reader that calls `on_close` once it is closed, which the server does after
    the last byte of the answer has gone out (or the client has hung up).

    Written here because a file download is passed straight to the server (werkzeug's
    direct passthrough: the response's own close callbacks never run); only read, seek,
    tell and close are used by werkzeug's and waitress's file wrappers.
    """

    def __init__(self, reader: IO[bytes]) -> None:
        self.reader = reader
        self.on_close: Callable[[], None] | None = None

    def read(self, size: int = -1) -> bytes:
        """The next bytes."""
        return self.reader.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to a position (a Range's start)."""
        return self.reader.seek(offset, whence)

    def tell(self) -> int:
        """The position."""
        return self.reader.tell()

    def seekable(self) -> bool:
        """Whether the reader seeks."""
        return self.reader.seekable()

    def close(self) -> None:
        """Close the reader, then call `on_close` (once)."""
        self.reader.close()
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()


class Window:
    """One range of a reader, from `start` up to `stop`: reads end at `stop`, and seeking
    to the end goes there, so that a server's file wrapper sends exactly the range."""

    def __init__(self, reader: IO[bytes], start: int, stop: int) -> None:
        self.reader = reader
        self.stop = stop
        reader.seek(start)

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the range; none past its end."""
        left = self.stop - self.reader.tell()
        if left <= 0:
            return b""
        return self.reader.read(left if size < 0 else min(size, left))

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to a position of the reader; its end is the range's."""
        if whence == 2:
            return self.reader.seek(self.stop + offset)
        return self.reader.seek(offset, whence)

    def tell(self) -> int:
        """The position in the reader."""
        return self.reader.tell()

    def seekable(self) -> bool:
        """A window seeks."""
        return True

    def close(self) -> None:
        """Close the reader (and so record a download, for a SentReader)."""
        self.reader.close()


def attachment(download: Download, content_type: str, reader: IO[bytes]) -> Response:
    """Stored bytes as an attachment, with ETag, 304 and Range answers.

    werkzeug's send_file writes the headers; the length and the conditional handling are
    set here because a backend's reader is not a file on this disk.
    """
    response = send_file(
        reader,
        mimetype=content_type,
        as_attachment=True,
        download_name=download.filename,
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.content_length = download.size
    response.last_modified = download.modified
    response.set_etag(download.etag)
    environ = range_as_read(request.environ, download.size)
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=download.size)
    except BaseException:
        response.close()  # a 416 is raised: the reader is not handed on
        raise
    response.headers["Cache-Control"] = "private, no-cache"
    served = response.content_range
    if response.status_code == 206 and served is not None and reader.seekable():
        # werkzeug serves a range by iterating the file 8 KiB at a time (its range wrapper),
        # which hides the file from the server; a window of the file goes to the server as
        # a whole file does (waitress's file_wrapper), several times faster.
        assert served.start is not None and served.stop is not None
        window = Window(reader, served.start, served.stop)
        response.response = wrap_file(request.environ, cast(IO[bytes], window))
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
