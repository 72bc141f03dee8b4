"""Zip archives of a folder, or of a selection of files and folders, streamed as they are
built: every ready file below, with its path inside the archive as in Coffer.

The archive is written entry by entry (zipstream.ZipStream) and each piece is handed on as
soon as it is written; so the memory used is one read buffer plus the central directory's
records (about 100 bytes a file), whatever the bytes' size. A file's CRC-32 is recorded by
validation, so its entry's header carries its CRC and size and its bytes go out as read from
storage, in reads of CHUNK, neither copied nor checksummed again; a file validated before
Coffer recorded the CRC (`crc32` NULL) has it computed as its bytes pass, written after them
in a data descriptor (what the standard library's zipfile did for every entry). Entries are
stored, not deflated: files are mostly already compressed (images, video, PDFs, office
documents, archives), and deflate ran at about 46 MiB/s against about 2.6 GiB/s stored
(1 GiB of random bytes, 16 MiB files, zipfile on CPython 3.11): the archive would be
CPU-bound at a few percent of a download's speed for a few percent saved.

Folder rows are read once (one recursive query); files are read one folder at a time, a page
at a time, each page in its own short transaction, so a long download holds no database
connection between pages.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal_column, select, tuple_

from .. import metrics
from ..extensions import db
from ..libc import READ_BUFFER
from ..models import File, FileStatus, Folder, Organization
from ..services.errors import InvalidInput, NotFound
from ..services.tenancy import in_organization, live, scoped
from ..storage import get_storage
from .access import parse_file_id
from .folders import get_folder, place_of, subtree
from .names import numbered
from .zipstream import SizeMismatch, ZipStream

log = logging.getLogger(__name__)

# The most ids one selection may name, of files and of folders each.
MAX_SELECTION = 1000
# Bytes read from storage at a time, and so the largest piece handed to the server: large
# enough that the per-piece work in Python is small beside the bytes' own.
CHUNK = READ_BUFFER
# Files read from the database per query.
PAGE = 500
# A path component's longest form, in bytes of UTF-8 (most file systems' limit).
MAX_PART_BYTES = 255
# Characters Windows refuses in a name, beside the control characters.
WINDOWS_RESERVED = frozenset('<>:"/\\|?*')
# Device names Windows refuses as a name's stem, in any case and with any extension.
WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]}
)
# Zip times start in 1980.
EARLIEST = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--
FOLDER_MODE = (0o40755 << 16) | 0x10  # a Unix directory, and the MS-DOS directory bit


@dataclass(frozen=True)
class Archive:
    """A zip to answer with: its download name and its bytes as they are built."""

    name: str
    chunks: Iterator[bytes]


def safe_part(name: str) -> str:
    """One path component as every common OS's unzip writes it as given: no control or
    Windows-reserved characters, no trailing dot or space, no device name, not `.`/`..`, at
    most MAX_PART_BYTES; the extension is kept when the name is shortened."""
    cleaned = "".join(
        "_"
        if ch in WINDOWS_RESERVED or unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
        else ch
        for ch in name
    )
    cleaned = cleaned.strip(" ").rstrip(". ")
    if not cleaned:
        cleaned = "_"
    stem, dot, extension = cleaned.partition(".")
    if stem.rstrip(" ").upper() in WINDOWS_DEVICES:
        cleaned = f"{stem}_{dot}{extension}"
    return shortened(cleaned)


def shortened(name: str, limit: int = MAX_PART_BYTES) -> str:
    """The name cut to `limit` bytes of UTF-8 on a character boundary, keeping a short
    extension."""
    if len(name.encode()) <= limit:
        return name
    root, dot, extension = name.rpartition(".")
    tail = f".{extension}" if dot and root and len(extension.encode()) <= 16 else ""
    head = name[: len(name) - len(tail)] if tail else name
    room = limit - len(tail.encode())
    cut = head.encode()[:room].decode(errors="ignore").rstrip(". ")
    return f"{cut or '_'}{tail}"


def compared(path: str) -> str:
    """How file systems that ignore case and normalization compare a path."""
    return unicodedata.normalize("NFKC", path).casefold()


@dataclass
class Namer:
    """Paths inside the archive, each distinct from every other even where the OS unzipping
    it ignores case: a second `a_.txt` becomes `a_ (2).txt`."""

    taken: set[str] = field(default_factory=set)

    def path(self, directory: str, name: str) -> str:
        """A free path for `name` (made safe) in `directory` (`` or `A/B/`)."""
        safe = safe_part(name)
        candidate, n = safe, 1
        while compared(directory + candidate) in self.taken:
            n += 1
            candidate = shortened(numbered(safe, n))
        self.taken.add(compared(directory + candidate))
        return directory + candidate


@dataclass(frozen=True)
class Place:
    """A folder to archive and where its contents go in the zip (`A/B/`, or `` at the top)."""

    folder_id: str | None
    directory: str
    created_at: datetime | None


@dataclass(frozen=True)
class Member:
    """A ready file to put in the archive."""

    id: str
    filename: str
    key: str
    size: int
    uploaded_at: datetime
    # Recorded by validation; None for a file validated before Coffer recorded it.
    crc32: int | None


def folder_archive(organization_id: int, raw_id: str) -> Archive:
    """Every ready file below a folder (or `root`), at every depth; NotFound for another
    organization's or a missing folder."""
    if place_of(raw_id) is None:
        organization = db.session.get(Organization, organization_id)
        name = organization.name if organization is not None else "files"
        places = list(walk(organization_id, None, "", Namer()))
        return Archive(f"{name}.zip", build(organization_id, [], places))
    folder = get_folder(organization_id, raw_id)
    places = list(walk(organization_id, folder.id, "", Namer()))
    return Archive(f"{folder.name}.zip", build(organization_id, [], places))


def selection_archive(organization_id: int, file_ids: list[str], folder_ids: list[str]) -> Archive:
    """The ready ones of the selected files at the top of the zip, and each selected folder
    with everything below it; 404 when any id is not the organization's."""
    # Each list is held to MAX_SELECTION by its schema; an empty selection is an empty zip.
    if len(file_ids) > MAX_SELECTION or len(folder_ids) > MAX_SELECTION:
        raise InvalidInput(
            "invalid_field", f"a selection names at most {MAX_SELECTION} files and folders each"
        )
    wanted_files = list(dict.fromkeys(parse_file_id(raw) for raw in file_ids))
    found = {
        row.id: row
        for row in db.session.scalars(
            scoped(File, organization_id).where(File.id.in_(wanted_files))
        )
    }
    if len(found) != len(wanted_files):
        raise NotFound("not_found", "file not found")
    folders = [get_folder(organization_id, raw) for raw in dict.fromkeys(folder_ids)]
    namer = Namer()
    top = [member_of(found[file_id]) for file_id in wanted_files]
    top = [member for member in top if found[member.id].status == FileStatus.READY]
    named = [(member, namer.path("", member.filename)) for member in top]
    places: list[Place] = []
    for folder in folders:
        if any(place.folder_id == folder.id for place in places):
            continue  # inside a folder already selected
        directory = namer.path("", folder.name) + "/"
        places.extend(walk(organization_id, folder.id, directory, namer, folder.created_at))
    return Archive("selection.zip", build(organization_id, named, places, namer))


def member_of(row: File) -> Member:
    """What the archive needs of a file row."""
    return Member(row.id, row.filename, row.file_path, row.size, row.uploaded_at, row.crc32)


def walk(
    organization_id: int,
    folder_id: str | None,
    directory: str,
    namer: Namer,
    created_at: datetime | None = None,
) -> Iterator[Place]:
    """The folder's own place (at `directory`), then each folder below it, depth first by
    name."""
    if folder_id is None:
        query = select(Folder.id, Folder.parent_id, Folder.name, Folder.created_at).where(
            in_organization(Folder, organization_id), live(Folder)
        )
    else:
        tree = subtree(organization_id, folder_id)
        query = select(Folder.id, Folder.parent_id, Folder.name, Folder.created_at).where(
            Folder.id.in_(select(tree.c.id)), Folder.id != folder_id
        )
    below: dict[str | None, list[tuple[str, str, datetime]]] = {}
    for row in db.session.execute(query.order_by(Folder.name_key, Folder.id)):
        below.setdefault(row.parent_id, []).append((row.id, row.name, row.created_at))
    db.session.rollback()  # end the read: the stream may last long
    yield Place(folder_id, directory, created_at)
    stack = [(child, directory) for child in reversed(below.get(folder_id, []))]
    while stack:
        (child_id, name, created_at), parent_directory = stack.pop()
        child_directory = namer.path(parent_directory, name) + "/"
        yield Place(child_id, child_directory, created_at)
        stack.extend(
            (grandchild, child_directory) for grandchild in reversed(below.get(child_id, []))
        )


def members(organization_id: int, folder_id: str | None) -> Iterator[Member]:
    """A place's own ready files by name, a page per short transaction."""
    after: tuple[str, str] | None = None
    while True:
        query = (
            select(
                File.id,
                File.filename,
                File.file_path,
                File.size,
                File.uploaded_at,
                File.crc32,
                File.name_key,
            )
            .where(
                in_organization(File, organization_id),
                live(File),
                # models.FILE_PLACE, spelled as the index has it so that the index serves.
                func.coalesce(File.folder_id, literal_column("''")) == (folder_id or ""),
                File.status == FileStatus.READY,
            )
            .order_by(File.name_key, File.id)
            .limit(PAGE)
        )
        if after is not None:
            query = query.where(tuple_(File.name_key, File.id) > after)
        rows = db.session.execute(query).all()
        db.session.rollback()  # no connection held while the page's bytes are sent
        for row in rows:
            yield Member(row.id, row.filename, row.file_path, row.size, row.uploaded_at, row.crc32)
        if len(rows) < PAGE:
            return
        after = (rows[-1].name_key or "", rows[-1].id)


def build(
    organization_id: int,
    top: Iterable[tuple[Member, str]],
    places: list[Place],
    namer: Namer | None = None,
) -> Iterator[bytes]:
    """The archive's bytes, each piece counted as sent."""
    for piece in entries(organization_id, top, places, namer or Namer()):
        metrics.count_bytes_sent(len(piece))
        yield piece


def entries(
    organization_id: int, top: Iterable[tuple[Member, str]], places: list[Place], namer: Namer
) -> Iterator[bytes]:
    """The archive's pieces, written as they are read: the given top-level files, then each
    place's folder entry and its own files, then the central directory."""
    archive = ZipStream()
    seen: set[str] = set()
    for member, path in top:
        seen.add(member.id)
        yield from add_file(archive, member, path)
    for place in places:
        if place.directory:
            yield archive.folder(place.directory, zip_time(place.created_at), FOLDER_MODE)
        for member in members(organization_id, place.folder_id):
            if member.id in seen:
                continue
            seen.add(member.id)
            yield from add_file(archive, member, namer.path(place.directory, member.filename))
    yield from archive.finish()


def add_file(archive: ZipStream, member: Member, path: str) -> Iterator[bytes]:
    """One file's entry; a file whose bytes are gone is left out and logged (the archive
    stays whole; `manage.py storage check` lists such files)."""
    try:
        reader = get_storage().open(member.key)
    except FileNotFoundError:
        log.error(
            "the bytes of ready file %s are missing from storage; left out of a zip",
            member.id,
            extra={"file_id": member.id},
        )
        return
    with reader:
        try:
            yield from archive.file(
                path,
                zip_time(member.uploaded_at),
                FILE_MODE,
                member.size,
                member.crc32,
                iter(lambda: reader.read(CHUNK), b""),
            )
        except SizeMismatch:
            # Changed in storage since validation: the archive cannot be finished right.
            log.error(
                "the stored bytes of ready file %s are not the size its row says; zip cut short",
                member.id,
                extra={"file_id": member.id},
            )
            raise


def zip_time(moment: datetime | None) -> tuple[int, int, int, int, int, int]:
    """A zip entry's time (UTC, as Coffer stamps it; zip keeps no zone), not before 1980."""
    if moment is None:
        return EARLIEST
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return max(stamp, EARLIEST)
