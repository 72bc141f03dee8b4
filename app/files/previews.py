"""Previews: a small and a large image of a ready file's content (images, a PDF's first
page), stored through `Storage` beside the content's bytes, read for the thumbnail endpoint
and the share page, and removed with the content."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import IO

from flask import current_app
from PIL import Image, ImageCms, ImageOps
from sqlalchemy import select, update

from ..database import write_transaction
from ..extensions import db
from ..models import File, FileStatus, FileVersion
from ..services.errors import InvalidInput, NoPreview
from ..services.queue import enqueue_previews
from ..services.tenancy import in_organization
from ..storage import get_storage
from .access import get_file

log = logging.getLogger(__name__)

# The sizes a preview comes in, by name: the longest side in pixels.
SIZES: dict[str, int] = {"small": 256, "large": 1024}
MIME_TYPE = "image/webp"
# Preview images of one content live under `<its key>` + this, one object per size.
SUFFIX = ".preview/"

# The validated types that get previews: Pillow's images (a GIF's or WebP's first frame)
# and PDFs (the first page).
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PDF_TYPE = "application/pdf"
WEBP_QUALITY = 80
# One point is 1/72 inch: a page's size in points at scale 1 renders that many pixels.
PDF_POINTS_PER_PIXEL = 1.0

__all__ = [
    "SIZES",
    "NoPreview",
    "Preview",
    "backfill",
    "keys_of",
    "make",
    "owner_of",
    "queue",
    "read",
    "wanted",
]


class Undecodable(Exception):
    """The content cannot be made into a preview (broken, or not what its type says)."""


class OverLimit(Exception):
    """The image declares more pixels than PREVIEW_MAX_PIXELS."""


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


def read(organization_id: int, file_id: str, size: str | None = "small") -> Preview:
    """One preview image of a file of the organization (what it answers with now).

    NotFound for another tenant's file, a trashed one or a malformed id; NoPreview when the
    file has none (not ready, not an image or PDF, not yet made, over the limit)."""
    name = parse_size(size)
    row = get_file(organization_id, file_id)
    if row.status != FileStatus.READY or not row.preview:
        raise NoPreview()
    try:
        data = get_storage().get(key_of(row.file_path, name))
    except FileNotFoundError:
        # Lost outside Coffer (or removed in between): the file simply shows none.
        log.warning("the %s preview of file %s is missing", name, row.id, extra={"file_id": row.id})
        raise NoPreview() from None
    etag = hashlib.blake2b(data, digest_size=16).hexdigest()
    return Preview(data=data, etag=f'"{etag}"', mime_type=MIME_TYPE)


def wanted(mime_type: str | None) -> bool:
    """Whether content of this validated type gets previews."""
    return mime_type in IMAGE_TYPES or mime_type == PDF_TYPE


def queue(organization_id: int, file_id: str) -> bool:
    """Queue the previews of a file that now answers with new ready content, when its type
    gets any; True when a job was queued. Most uploads are not pictures: reading the type
    here spares them a job (and a work horse's fork) that would only skip."""
    mime_type = db.session.scalar(
        select(File.mime_type).where(in_organization(File, organization_id), File.id == file_id)
    )
    db.session.rollback()
    return wanted(mime_type) and enqueue_previews(file_id, organization_id)


def make(organization_id: int, file_id: str) -> str:
    """Make and store the small and large previews of the content a ready file answers with;
    returns `made`, `skipped` (not a previewable type, over PREVIEW_MAX_PIXELS, gone, or it
    has them already) or `failed` (it would not decode). The file stays as it is whatever
    happens here."""
    found = db.session.execute(
        select(File.file_path, File.mime_type, File.status, File.preview).where(
            in_organization(File, organization_id), File.id == file_id
        )
    ).first()
    db.session.rollback()
    if found is None or found.status != FileStatus.READY or found.preview:
        return "skipped"
    path, mime_type = str(found.file_path), found.mime_type
    if not wanted(mime_type):
        return "skipped"
    extra = {"file_id": file_id}
    try:
        with get_storage().open(path) as reader:
            large = render(reader, mime_type, current_app.config["PREVIEW_MAX_PIXELS"])
    except FileNotFoundError:
        log.warning("the bytes of file %s are gone: no preview", file_id, extra=extra)
        return "skipped"
    except OverLimit as exc:
        log.info("file %s gets no preview: %s", file_id, exc, extra=extra)
        return "skipped"
    except Undecodable as exc:
        log.warning("file %s gets no preview: %s", file_id, exc, extra=extra)
        return "failed"
    images = {"large": large, "small": fitted(large, SIZES["small"])}
    storage = get_storage()
    for size, image in images.items():
        storage.put(key_of(path, size), encoded(image))
    if not mark_made(organization_id, path):
        # The content went meanwhile (removed for good, or pruned): its images go too.
        storage.remove_many(keys_of(path))
        return "skipped"
    log.info("previews of file %s made", file_id, extra=extra)
    return "made"


def mark_made(organization_id: int, path: str) -> bool:
    """Record that the content at `path` has its previews, on whichever row holds it now
    (the file's, or a version's when a newer one was promoted meanwhile); False when no row
    holds it any more."""
    with write_transaction() as session:
        marked = 0
        for model in (File, FileVersion):
            marked += session.execute(  # type: ignore[attr-defined]
                update(model)
                .where(in_organization(model, organization_id), model.file_path == path)
                .values(preview=True)
                .execution_options(synchronize_session=False)
            ).rowcount
    return marked > 0


def render(reader: IO[bytes], mime_type: str | None, max_pixels: int) -> Image.Image:
    """The large preview (longest side at most SIZES["large"]) of an image or a PDF's first
    page, in sRGB; OverLimit or Undecodable when there is none to make."""
    try:
        if mime_type == PDF_TYPE:
            return _pdf_page(reader)
        return _image(reader, max_pixels)
    except (OverLimit, Undecodable):
        raise
    except Image.DecompressionBombError as exc:
        raise OverLimit(str(exc)) from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, ArithmeticError) as exc:
        # Pillow's and PDFium's ways of saying the bytes are not what they claim.
        raise Undecodable(f"{type(exc).__name__}: {exc}") from exc


def _image(reader: IO[bytes], max_pixels: int) -> Image.Image:
    """Decode an image at the smallest scale that still fills the large preview."""
    with warnings.catch_warnings():
        # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; the check
        # below refuses above the limit itself, before a pixel is decoded.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            image = Image.open(reader)
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    width, height = image.size
    if width * height > max_pixels:
        raise OverLimit(f"{width}x{height} is over PREVIEW_MAX_PIXELS ({max_pixels})")
    limit = SIZES["large"]
    if image.format == "JPEG":
        # JPEG decodes at 1/2, 1/4 or 1/8 scale directly: a 100-megapixel photo never
        # exists in memory at full size.
        image.draft(image.mode if image.mode in ("RGB", "L") else None, (limit, limit))
    icc = image.info.get("icc_profile")
    image.thumbnail((limit, limit), Image.Resampling.LANCZOS, reducing_gap=3.0)
    turned = ImageOps.exif_transpose(image)
    return _srgb(turned, icc)


def _srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """The image in sRGB (RGB, or RGBA to keep transparency)."""
    alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    wanted = "RGBA" if alpha else "RGB"
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image,
                source,
                ImageCms.createProfile("sRGB"),
                outputMode="RGBA" if image.mode == "RGBA" else "RGB",
            )
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError) as exc:
            # A broken profile: the pixels as they are beat no preview at all.
            log.info("colour profile ignored: %s", exc)
    return image if image.mode == wanted else image.convert(wanted)


def _pdf_page(reader: IO[bytes]) -> Image.Image:
    """The first page of a PDF, rendered at the scale that fits the large preview."""
    import pypdfium2  # imported here: only the previews job renders PDFs

    try:
        document = pypdfium2.PdfDocument(reader)
    except pypdfium2.PdfiumError as exc:
        raise Undecodable(str(exc)) from exc
    try:
        if len(document) == 0:
            raise Undecodable("the PDF has no pages")
        page = document[0]
        width, height = page.get_size()
        if width <= 0 or height <= 0:
            raise Undecodable("the first page has no size")
        scale = SIZES["large"] / max(width, height) / PDF_POINTS_PER_PIXEL
        bitmap = page.render(scale=scale)
        image: Image.Image = bitmap.to_pil().convert("RGB")
        page.close()
        return image
    except pypdfium2.PdfiumError as exc:
        raise Undecodable(str(exc)) from exc
    finally:
        document.close()


def fitted(image: Image.Image, longest: int) -> Image.Image:
    """A copy of the image whose longest side is at most `longest`."""
    copy = image.copy()
    copy.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return copy


def encoded(image: Image.Image) -> bytes:
    """The image as WebP."""
    out = io.BytesIO()
    image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()


def backfill(organization_id: int | None = None) -> int:
    """Queue the previews of every ready image or PDF without them (stored before previews
    came, or whose job was lost), of one organization or all; returns how many were queued.
    A file whose content gets none (over the limit, undecodable) is queued again each time:
    its job skips it cheaply."""
    query = select(File.id, File.organization_id).where(
        File.status == FileStatus.READY,
        File.preview.is_(False),
        File.mime_type.in_(sorted(IMAGE_TYPES | {PDF_TYPE})),
    )
    if organization_id is not None:
        query = query.where(in_organization(File, organization_id))
    rows = db.session.execute(query.order_by(File.uploaded_at)).all()
    db.session.rollback()
    return sum(enqueue_previews(file_id, org_id) for file_id, org_id in rows)
