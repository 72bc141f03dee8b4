"""The head of a text file for its preview: at most 64 KiB of a ready file's bytes, read
through storage and decoded as UTF-8, never interpreted."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from ..models import File, FileStatus
from ..services.content import TEXT_LIKE
from . import access

# What a preview shows of a text file: enough to recognise it, never the whole of a big one.
TEXT_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class TextHead:
    """The start of a text file, and whether the file goes on past it."""

    text: str
    truncated: bool


def is_text(row: File) -> bool:
    """Whether a file's stored type is text (text/*, JSON, XML, YAML, scripts, SVG's source)."""
    mime = (row.mime_type or "").split(";")[0].strip().lower()
    return mime.startswith("text/") or mime in TEXT_LIKE


def text_head(row: File, limit: int = TEXT_HEAD_BYTES) -> TextHead:
    """The first `limit` bytes of a ready file as text: invalid UTF-8 shown as U+FFFD, a
    character cut by the limit left out; 410 `file_missing` when the bytes are gone."""
    if row.status != FileStatus.READY:
        return TextHead(text="", truncated=False)
    reader = access.open_bytes(row)
    try:
        data = bytearray()
        # A stream may answer less than asked (S3's body does): read until the limit or
        # the end.
        while len(data) < limit:
            chunk = reader.read(limit - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        reader.close()
    truncated = row.size > len(data)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return TextHead(text=decoder.decode(bytes(data), final=not truncated), truncated=truncated)
