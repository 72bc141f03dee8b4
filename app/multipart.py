"""The request class: a multipart upload's file part streams into storage as it arrives."""

from __future__ import annotations

import uuid
from typing import IO, Any

from flask import Request, current_app, g
from flask_login import current_user
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import File as FilePart

from . import metrics
from .errors import APIError
from .storage import get_storage
from .storage.base import Upload
from .storage.names import display_name, object_key, sent_filename

# Room for the multipart framing around the file part (boundaries, part headers, a
# csrf_token field); the file itself is held to MAX_FILE_SIZE exactly.
MULTIPART_OVERHEAD = 64 * 1024
# How much of an upload the multipart parser reads at a time: fewer parser turns per byte
# than werkzeug's 64 KiB (docs/PERFORMANCE.md); above the 500 KB form-field limit it refuses.
PARSE_CHUNK = 256 * 1024
UPLOAD_ENDPOINT = "files.upload"
# The endpoints whose bodies are a file's bytes, and may be as large as a file.
UPLOAD_ENDPOINTS = frozenset({UPLOAD_ENDPOINT, "uploads.create", "uploads.append"})


def upload_body_limit() -> int:
    """The largest upload request body: the file limit plus the multipart framing."""
    return int(current_app.config["MAX_FILE_SIZE"]) + MULTIPART_OVERHEAD


class ReceivedFile:
    """The file part of an upload request, streamed into the store under a fresh id.

    werkzeug's parser writes each chunk here; the size is known when parsing ends.
    """

    def __init__(self, headers: Headers, parsed_name: str | None) -> None:
        self.file_id = str(uuid.uuid4())
        self.raw_name = sent_filename(parsed_name, headers.get("Content-Disposition", ""))
        self.display_name = display_name(self.raw_name)
        organization_id = int(current_user.organization_id)
        self.upload: Upload = get_storage().begin_upload(
            object_key(organization_id, self.file_id, self.display_name)
        )

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self.upload.size

    def write(self, data: bytes) -> int:
        """Pass a chunk on to the store."""
        metrics.count_bytes_received("multipart", len(data))
        return self.upload.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """werkzeug rewinds the stream once the part ends; nothing is read back."""
        return 0

    def flush(self) -> None:
        """Nothing buffered here."""

    def close(self) -> None:
        """Closing is the request's teardown's business (finish or abort)."""


class UploadMultiPartParser(MultiPartParser):
    """werkzeug's multipart parser, handing each file part's headers to the stream."""

    def start_file_streaming(self, event: FilePart, total_content_length: int | None) -> IO[bytes]:
        g.coffer_part_headers = event.headers
        return super().start_file_streaming(event, total_content_length)


class UploadFormParser(FormDataParser):
    """werkzeug's form parser, reading multipart bodies in larger chunks."""

    def _parse_multipart(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> Any:
        # Same as werkzeug's own, which offers no way to set the parser's buffer size.
        parser = UploadMultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
            buffer_size=PARSE_CHUNK,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        try:
            form, files = parser.parse(stream, boundary, content_length)
        except UnicodeDecodeError:
            # werkzeug would drop the whole form silently, answered as a missing file.
            raise APIError(
                400, "invalid_part_header", "a part's headers are not UTF-8 text"
            ) from None
        except RequestEntityTooLarge as exc:
            if _too_many_parts(exc):
                raise APIError(
                    400,
                    "too_many_parts",
                    f"the form has more than {self.max_form_parts} parts",
                ) from None
            raise
        return stream, form, files


def _too_many_parts(exc: RequestEntityTooLarge) -> bool:
    """Whether werkzeug's decoder raised this for its parts limit.

    werkzeug raises the same exception for the body limit, a field over the form-memory
    limit and too many parts; only the last is the client's form, not its size, so it is
    told apart by the decoder's own count in the frame that raised it.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    decoder = tb.tb_frame.f_locals.get("self") if tb is not None else None
    parts = getattr(decoder, "_parts_decoded", None)
    limit = getattr(decoder, "max_parts", None)
    return parts is not None and limit is not None and parts > limit


class CofferRequest(Request):
    """The request class: upload bodies stream into storage under the upload limit."""

    form_data_parser_class = UploadFormParser

    @property  # type: ignore[misc]  # read-only here: werkzeug's has a setter
    def max_content_length(self) -> int | None:  # type: ignore[override]
        """Upload endpoints allow MAX_FILE_SIZE plus framing; others the JSON limit."""
        if self.endpoint in UPLOAD_ENDPOINTS:
            return upload_body_limit()
        return super().max_content_length

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        received = ReceivedFile(g.pop("coffer_part_headers", Headers()), filename)
        g.setdefault("coffer_received_files", []).append(received)
        return received  # type: ignore[return-value]


def received_file(part: Any) -> ReceivedFile | None:
    """The ReceivedFile behind a parsed file part, or None when it was not streamed."""
    stream = getattr(part, "stream", None)
    return stream if isinstance(stream, ReceivedFile) else None


def keep(received: ReceivedFile) -> None:
    """The upload's row committed: its bytes stay when the request ends."""
    files = g.get("coffer_received_files", [])
    if received in files:
        files.remove(received)


def discard_unkept_uploads(_exc: BaseException | None = None) -> None:
    """Remove the bytes of this request's file parts whose row did not commit."""
    for received in g.pop("coffer_received_files", []):
        try:
            received.upload.abort()
        except Exception:  # noqa: BLE001 - teardown must not fail; the check finds leftovers
            current_app.logger.warning("could not remove an unkept upload %s", received.upload.key)
