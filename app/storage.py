"""Bytes on disk: streamed temp files, safe names and the storage layout."""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from flask import Request, current_app, g, has_request_context
from werkzeug.datastructures import FileStorage
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.utils import secure_filename

from .errors import APIError

log = logging.getLogger(__name__)

TEMP_DIR = ".tmp"
MAX_DISPLAY_NAME_BYTES = 255
# Room for the multipart framing around the file part (boundaries, part headers, a
# csrf_token field); the file itself is held to MAX_FILE_SIZE exactly.
MULTIPART_OVERHEAD = 64 * 1024
# How much of an upload the multipart parser reads at a time: werkzeug's 64 KiB costs
# measurably more parser turns per byte; above the 500 KB form-field limit it refuses.
PARSE_CHUNK = 256 * 1024
# The quoted filename parameter of a part's Content-Disposition, `\"` escapes allowed.
QUOTED_FILENAME_RE = re.compile(r'(?:^|;)\s*filename\s*=\s*"((?:\\"|[^"])*)"', re.IGNORECASE)
BACKSLASH_ESCAPE_RE = re.compile(r"\\(.)")
# The file system is full, or the disk quota of Coffer's user is used up.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def upload_root() -> Path:
    """UPLOAD_FOLDER as a Path."""
    return Path(current_app.config["UPLOAD_FOLDER"])


def absolute(relative: str) -> Path:
    """The absolute path of a stored file's relative path."""
    return upload_root() / relative


@contextmanager
def no_space_is_507() -> Iterator[None]:
    """Answer a full disk with a clear 507 instead of a generic 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        log.error("no space left to store an upload in %s: %s", upload_root(), exc)
        raise APIError(
            507,
            "insufficient_storage",
            "the server has no disk space left to store this file; nothing was stored",
        ) from exc


class UploadTempFile:
    """A temp file in UPLOAD_FOLDER that counts the bytes written to it.

    werkzeug's multipart parser writes each chunk of the file part here, so the upload
    reaches disk once, with its size known when parsing ends. Hashing is left to the
    validation job, which reads the stored bytes anyway.
    """

    def __init__(self, directory: Path) -> None:
        with no_space_is_507():
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write a chunk, counting its bytes."""
        self.size += len(data)
        with no_space_is_507():
            return self._file.write(data)

    def flush(self) -> None:
        """Write out buffered bytes."""
        with no_space_is_507():
            self._file.flush()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move in the file (werkzeug rewinds it once the part ends)."""
        # Seeking flushes the write buffer, so it too can find the disk full.
        with no_space_is_507():
            return self._file.seek(offset, whence)

    def seal(self) -> None:
        """Flush the bytes to stable storage and close, before any lock is taken."""
        with no_space_is_507():
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __getattr__(self, name: str) -> Any:
        # read, seek, tell, flush, close... go to the real file.
        return getattr(self._file, name)


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
        parser = MultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
            buffer_size=PARSE_CHUNK,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class CofferRequest(Request):
    """The request class: upload bodies stream to disk under the upload limit."""

    form_data_parser_class = UploadFormParser

    @property
    def max_content_length(self) -> int | None:  # type: ignore[override]
        """The upload endpoint allows MAX_FILE_SIZE plus framing; others the JSON limit."""
        if self.endpoint == "files.upload":
            return int(current_app.config["MAX_FILE_SIZE"]) + MULTIPART_OVERHEAD
        return super().max_content_length

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        stream = UploadTempFile(upload_root() / TEMP_DIR)
        if has_request_context():
            g.setdefault("coffer_temp_files", []).append(stream)
        return stream  # type: ignore[return-value]


def discard_request_temp_files(_exc: BaseException | None = None) -> None:
    """Remove the temp files of this request that were not moved into place."""
    for stream in g.pop("coffer_temp_files", []):
        try:
            stream.close()
        except OSError:
            pass
        stream.path.unlink(missing_ok=True)


def sent_filename(upload: FileStorage) -> str | None:
    """The file name as the client sent it, with its backslashes.

    werkzeug reads a quoted filename as an RFC 2616 quoted-string and drops every
    backslash, but browsers and most HTTP libraries escape only the double quote, so a
    Windows path like C:\\Users\\me\\a.txt would lose its separators.
    """
    parsed = upload.filename
    match = QUOTED_FILENAME_RE.search(upload.headers.get("Content-Disposition", ""))
    if parsed is None or match is None:
        return parsed
    quoted = match.group(1)
    # Only trust the raw value when it is the very parameter werkzeug decoded
    # (not a filename* one, which carries no backslash escapes).
    if BACKSLASH_ESCAPE_RE.sub(r"\1", quoted) != parsed:
        return parsed
    return quoted.replace('\\"', '"')


def display_name(raw: str | None) -> str:
    """The user's file name made safe to show: last path part, no control characters,
    at most 255 bytes of UTF-8. May be empty."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs"})
    name = name.strip()
    if name in {".", ".."}:
        # Path steps, not names.
        return ""
    encoded = name.encode("utf-8", "ignore")
    if len(encoded) > MAX_DISPLAY_NAME_BYTES:
        root, dot, ext = name.rpartition(".")
        # Keep a short extension when cutting, so the type check still sees it.
        if dot and root and 0 < len(ext.encode()) <= 16:
            budget = MAX_DISPLAY_NAME_BYTES - len(ext.encode()) - 1
            name = root.encode()[:budget].decode("utf-8", "ignore") + "." + ext
        else:
            name = encoded[:MAX_DISPLAY_NAME_BYTES].decode("utf-8", "ignore")
    return name


def disk_name(display: str) -> str:
    """The name on disk: werkzeug's ASCII-safe form of the display name."""
    safe = secure_filename(display)
    extension = extension_of(display)
    if not safe or safe.startswith("."):
        safe = "file" + (f".{extension}" if extension and extension.isalnum() else "")
    return safe[:200]


def extension_of(name: str) -> str:
    """The lower-cased extension of a name without the dot, or ''."""
    root, dot, ext = name.rpartition(".")
    return ext.lower() if dot and root else ""


def store(temp: UploadTempFile, organization_id: int, file_id: str, display: str) -> str:
    """Move a sealed temp file into place; returns its path relative to UPLOAD_FOLDER."""
    relative = f"{organization_id}/{file_id}/{disk_name(display)}"
    target = absolute(relative)
    try:
        with no_space_is_507():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp.path, target)
    except BaseException:
        # Nothing was moved in: leave no empty per-file folder behind.
        remove(relative)
        raise
    return relative


def remove(relative: str) -> None:
    """Delete a stored file and its per-file folder; missing is fine."""
    path = absolute(relative)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass
