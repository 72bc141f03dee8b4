"""Bytes on disk: streamed temp files, safe names and the storage layout."""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import IO, Any

from flask import Request, current_app, g, has_request_context
from werkzeug.utils import secure_filename

TEMP_DIR = ".tmp"
MAX_DISPLAY_NAME_BYTES = 255
# Room for the multipart framing around the file part (boundaries, part headers, a
# csrf_token field); the file itself is held to MAX_FILE_SIZE exactly.
MULTIPART_OVERHEAD = 64 * 1024
CHUNK = 1024 * 1024


def upload_root() -> Path:
    """UPLOAD_FOLDER as a Path."""
    return Path(current_app.config["UPLOAD_FOLDER"])


def absolute(relative: str) -> Path:
    """The absolute path of a stored file's relative path."""
    return upload_root() / relative


class HashingFile:
    """A temp file in UPLOAD_FOLDER that hashes and counts bytes as they are written.

    werkzeug's multipart parser writes each chunk of the file part here, so the upload
    reaches disk once, with its size and SHA-256 known when parsing ends.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write a chunk, updating the running hash and size."""
        self._sha256.update(data)
        self.size += len(data)
        return self._file.write(data)

    def hexdigest(self) -> str:
        """SHA-256 of everything written."""
        return self._sha256.hexdigest()

    def __getattr__(self, name: str) -> Any:
        # read, seek, tell, flush, close... go to the real file.
        return getattr(self._file, name)


class CofferRequest(Request):
    """The request class: upload bodies stream to disk under the upload limit."""

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
        stream = HashingFile(upload_root() / TEMP_DIR)
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


def display_name(raw: str | None) -> str:
    """The user's file name made safe to show: last path part, no control characters,
    at most 255 bytes of UTF-8. May be empty."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs"})
    name = name.strip()
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


def store(temp: HashingFile, organization_id: int, file_id: str, display: str) -> str:
    """Move a complete temp file into place; returns its path relative to UPLOAD_FOLDER."""
    relative = f"{organization_id}/{file_id}/{disk_name(display)}"
    target = absolute(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp.flush()
    os.fsync(temp.fileno())
    temp.close()
    os.replace(temp.path, target)
    return relative


def remove(relative: str) -> None:
    """Delete a stored file and its per-file folder; missing is fine."""
    path = absolute(relative)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass
