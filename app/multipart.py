"""The request class: a multipart upload's file part is handed, chunk by chunk, to the
file's intake as it arrives (nothing is spooled)."""

from __future__ import annotations

from functools import cached_property
from typing import IO, Any

import python_multipart
from flask import Request, current_app, g, request
from flask_login import current_user
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from .content_disposition import sent_filename
from .errors import APIError
from .files import intake
from .files.intake import Receiving
from .upload_endpoints import UPLOAD_ENDPOINTS

# Room for the multipart framing around the file part (boundaries, part headers, a
# csrf_token field); the file itself is held to MAX_FILE_SIZE exactly.
MULTIPART_OVERHEAD = 64 * 1024
# How much of an upload the multipart parser reads at a time: fewer parser turns per byte
# than werkzeug's 64 KiB (docs/PERFORMANCE.md).
PARSE_CHUNK = 256 * 1024
# Headers of one part: clients send two or three.
MAX_PART_HEADERS = 32


def upload_body_limit() -> int:
    """The largest upload request body: the file limit plus the multipart framing."""
    return int(current_app.config["MAX_FILE_SIZE"]) + MULTIPART_OVERHEAD


class ReceivedFile:
    """The file part of an upload request as werkzeug's parser sees it: a write-only stream
    handing each chunk to the file's intake (app/files/intake.py)."""

    def __init__(self, receiving: Receiving) -> None:
        self.receiving = receiving

    def write(self, data: bytes) -> int:
        """Pass a chunk on to the intake."""
        return self.receiving.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """werkzeug rewinds the stream once the part ends; nothing is read back."""
        return 0

    def flush(self) -> None:
        """Nothing buffered here."""

    def close(self) -> None:
        """Closing is the request's teardown's business (accepted or discarded)."""


class StreamingMultipart:
    """A multipart/form-data body parsed by python-multipart, file parts streamed to storage.

    Replaces werkzeug's parser on the upload path: werkzeug copies every chunk three times
    in Python (docs/PERFORMANCE.md), python-multipart hands slices of the chunk it was
    given. Field values, part headers and the parts' count keep werkzeug's limits.
    """

    def __init__(self, form_parser: FormDataParser, content_length: int | None) -> None:
        self._form_parser = form_parser
        self._content_length = content_length
        self.fields: list[tuple[str, str]] = []
        self.files: list[tuple[str, FileStorage]] = []
        self.ended = False
        self._parts = 0
        self._header_bytes = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._part: Headers | None = None
        self._name = ""
        self._filename: str | None = None
        self._field: list[bytes] = []
        self._field_size = 0
        self._stream: IO[bytes] | None = None

    def parse(self, stream: IO[bytes], boundary: bytes) -> None:
        """Feed the whole body through the parser; ValueError when it is not well formed."""
        limit = self._form_parser.max_form_memory_size
        parser = python_multipart.MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            # Its own header limits (4 KiB a line, 8 lines) would refuse long file names as a
            # malformed body; Coffer's form-memory limit answers 413 (_count_header_bytes).
            # python-multipart checks a line as it scans a chunk, Coffer when the chunk's
            # callbacks arrive: its limit sits a chunk above, so Coffer's is met first.
            max_header_count=MAX_PART_HEADERS,
            max_header_size=(limit or MULTIPART_OVERHEAD) + PARSE_CHUNK,
        )
        while chunk := stream.read(PARSE_CHUNK):
            parser.write(chunk)
        if not self.ended:
            raise ValueError("the multipart body ends before its closing boundary")

    def _on_part_begin(self) -> None:
        self._parts += 1
        limit = self._form_parser.max_form_parts
        if limit is not None and self._parts > limit:
            raise APIError(400, "too_many_parts", f"the form has more than {limit} parts")
        self._headers = []
        self._header_bytes = 0
        self._header_name.clear()
        self._header_value.clear()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        limit = self._form_parser.max_form_memory_size
        if limit is not None and self._header_bytes > limit:
            raise RequestEntityTooLarge()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers.append((bytes(self._header_name), bytes(self._header_value)))
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        try:
            headers = Headers(
                [
                    (name.decode().strip(" \t"), value.decode().strip(" \t"))
                    for name, value in self._headers
                ]
            )
        except UnicodeDecodeError:
            raise APIError(
                400, "invalid_part_header", "a part's headers are not UTF-8 text"
            ) from None
        disposition = headers.get("Content-Disposition")
        if disposition is None:
            raise ValueError("a part has no Content-Disposition header")
        _kind, options = parse_options_header(disposition)
        self._part = headers
        self._name = options.get("name", "")
        self._filename = options.get("filename")
        if self._filename is None:
            self._field = []
            self._field_size = 0
            self._stream = None
            return
        self._stream = self._form_parser.stream_factory(
            total_content_length=self._content_length,
            content_type=headers.get("Content-Type"),
            # The name as sent: werkzeug's parse drops what a raw UTF-8 header carries.
            filename=sent_filename(self._filename, disposition),
            content_length=0,
        )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data if start == 0 and end == len(data) else data[start:end]
        if self._stream is not None:
            self._stream.write(chunk)
            return
        self._field_size += len(chunk)
        limit = self._form_parser.max_form_memory_size
        if limit is not None and self._field_size > limit:
            raise RequestEntityTooLarge()
        self._field.append(chunk)

    def _on_part_end(self) -> None:
        headers = self._part if self._part is not None else Headers()
        if self._stream is None:
            self.fields.append((self._name, b"".join(self._field).decode("utf-8", "replace")))
        else:
            self.files.append(
                (
                    self._name,
                    FileStorage(self._stream, self._filename, self._name, headers=headers),
                )
            )
            self._stream = None

    def _on_end(self) -> None:
        self.ended = True


class UploadFormParser(FormDataParser):
    """werkzeug's form parser, with multipart bodies parsed by StreamingMultipart."""

    def _parse_multipart(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> Any:
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        body = StreamingMultipart(self, content_length)
        body.parse(stream, boundary)
        return stream, self.cls(body.fields), self.cls(body.files)


class CofferRequest(Request):
    """The request class: upload bodies stream into storage under the upload limit."""

    form_data_parser_class = UploadFormParser

    @property  # type: ignore[misc]  # read-only here: werkzeug's has a setter
    def max_content_length(self) -> int | None:  # type: ignore[override]
        """Upload endpoints allow MAX_FILE_SIZE plus framing; others the JSON limit."""
        if self.endpoint in UPLOAD_ENDPOINTS:
            return upload_body_limit()
        return super().max_content_length

    @cached_property
    def received(self) -> list[Receiving]:
        """The files this request's body brought, accepted or not."""
        return []

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        organization_id = g.get("receiving_for_organization")
        if organization_id is not None:
            # An upload-only link's visitor: the link's view named the organization first.
            receiving = intake.receive_into(organization_id, filename or "", via="multipart")
        else:
            receiving = intake.receive(current_user, filename or "", via="multipart")
        self.received.append(receiving)
        return ReceivedFile(receiving)  # type: ignore[return-value]


def received_file(part: Any) -> Receiving | None:
    """The intake behind a parsed file part, or None when it was not streamed."""
    stream = getattr(part, "stream", None)
    return stream.receiving if isinstance(stream, ReceivedFile) else None


def discard_unaccepted(_exc: BaseException | None = None) -> None:
    """Remove the bytes of this request's file parts that were not accepted."""
    received: list[Receiving] = getattr(request, "received", [])
    for receiving in received:
        try:
            receiving.discard()
        except Exception:  # noqa: BLE001 - teardown must not fail; the check finds leftovers
            current_app.logger.warning("could not remove an unkept upload %s", receiving.upload.key)
