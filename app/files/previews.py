"""Previews: a small and a large image of a ready file's content (images, a PDF's first
page), stored through `Storage` beside the content's bytes, read for the thumbnail endpoint
and the share page, and removed with the content."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from ..models import FileStatus
from ..services.errors import InvalidInput, NoPreview
from ..storage import get_storage
from .access import get_file

log = logging.getLogger(__name__)

# The sizes a preview comes in, by name: the longest side in pixels.
SIZES: dict[str, int] = {"small": 256, "large": 1024}
MIME_TYPE = "image/webp"
# Preview images of one content live under `<its key>` + this, one object per size.
SUFFIX = ".preview/"

__all__ = ["SIZES", "NoPreview", "Preview", "keys_of", "owner_of", "read"]


@dataclass(frozen=True)
class Preview:
    """One preview image: its bytes, an entity tag for caching, its type."""

    data: bytes
    etag: str
    mime_type: str


def key_of(path: str, size: str) -> str:
    """The key of one preview image of the content stored at `path`."""
    return f"{path}{SUFFIX}{size}.webp"


def keys_of(path: str) -> list[str]:
    """The keys of every preview image of the content stored at `path`."""
    return [key_of(path, size) for size in SIZES]


def owner_of(key: str) -> str | None:
    """The key of the content a preview image belongs to, or None for a key that names no
    preview image."""
    path, found, name = key.rpartition(SUFFIX)
    if not found or not path or name not in {f"{size}.webp" for size in SIZES}:
        return None
    return path


def parse_size(raw: str | None) -> str:
    """A preview size by name (`small` when none is given); 400 `invalid_size` otherwise."""
    if raw is None:
        return "small"
    if raw not in SIZES:
        raise InvalidInput("invalid_size", "size must be one of: " + ", ".join(SIZES), field="size")
    return raw


def read(organization_id: int, file_id: str, size: str = "small") -> Preview:
    """One preview image of a file of the organization (what it answers with now).

    NotFound for another tenant's file, a trashed one or a malformed id; NoPreview when the
    file has none (not ready, not an image or PDF, not yet made, over the limit)."""
    size = parse_size(size)
    row = get_file(organization_id, file_id)
    if row.status != FileStatus.READY or not row.preview:
        raise NoPreview()
    try:
        data = get_storage().get(key_of(row.file_path, size))
    except FileNotFoundError:
        # Lost outside Coffer (or removed in between): the file simply shows none.
        log.warning("the %s preview of file %s is missing", size, row.id, extra={"file_id": row.id})
        raise NoPreview() from None
    etag = hashlib.blake2b(data, digest_size=16).hexdigest()
    return Preview(data=data, etag=f'"{etag}"', mime_type=MIME_TYPE)
