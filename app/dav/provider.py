"""WsgiDAV's provider over Coffer: folders are collections, the files a member sees are
resources, and every change is one of the file package's use cases (intake for PUT, the
trash for DELETE, placement and folders for MOVE, copies for COPY, folders for MKCOL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any

from flask import g
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    DAVError,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider, _DAVResource

from ..errors import DOMAIN_STATUS
from ..files import copies, folders, intake, placement, trash, tree
from ..files.names import OnConflict, checked_name
from ..files.tree import Entry
from ..models import Folder, User
from ..services import activity
from ..services.content import served_type
from ..services.errors import DomainError, Gone
from ..storage import get_storage
from . import multistatus, stores

# How uploads and copies through WebDAV are counted (metrics) and named.
VIA = "webdav"
EPOCH = datetime(1970, 1, 1)
QUOTA_PROPERTIES = ("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes")


def user() -> User:
    """The member the request is authenticated as (set by the gate)."""
    member: User = g.dav_user
    return member


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain error, as the API answers it."""
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 400


def usage() -> tree.Usage:
    """The organization's usage, read once per request (every folder a PROPFIND lists
    answers the same quota)."""
    known: tree.Usage | None = g.get("dav_usage")
    if known is None:
        known = g.dav_usage = tree.usage(user().organization_id)
    return known


def folder_in(place: str | None, name: str) -> Folder | None:
    """The folder of this name directly in a place, remembered for the request: a PUT
    resolves its path, then its parent's path, walking the same folders twice. Forgotten
    by `folders_changed` whenever this request makes, moves or trashes a folder."""
    known: dict[tuple[str | None, str], Folder | None] = g.setdefault("dav_folders", {})
    if (place, name) not in known:
        known[place, name] = tree.folder_named(user().organization_id, place, name)
    return known[place, name]


def folders_changed() -> None:
    """This request changed folders: the next lookups read them again."""
    g.pop("dav_folders", None)


@contextmanager
def translated() -> Iterator[None]:
    """The domain's refusals as WebDAV errors of the same status (507 for the quota)."""
    try:
        yield
    except DomainError as exc:
        raise DAVError(status_of(exc), exc.message) from exc


def timestamp(moment: datetime | None) -> float | None:
    """Seconds since the epoch of a naive UTC time, as WsgiDAV takes them."""
    return None if moment is None else float(int((moment - EPOCH).total_seconds()))


def join(path: str, name: str) -> str:
    """The path of a member of the collection at `path`."""
    return path.rstrip("/") + "/" + name


class QuotedOnce(_DAVResource):  # type: ignore[misc]
    """A resource whose reference URL (the key of locks and dead properties) is quoted
    once: a PROPFIND of a folder asks each member for it more than once."""

    ref_url: str | None = None

    def get_ref_url(self) -> str:
        """WsgiDAV's reference URL, computed on first use."""
        if self.ref_url is None:
            self.ref_url = str(super().get_ref_url())
        return self.ref_url


class Place(QuotedOnce, DAVCollection):  # type: ignore[misc]
    """A folder, or the top level (`folder` None)."""

    def __init__(self, path: str, environ: dict[str, Any], folder: Folder | None) -> None:
        super().__init__(path, environ)
        self.folder = folder

    @property
    def place(self) -> str | None:
        """The folder's id; None at the top level."""
        return None if self.folder is None else self.folder.id

    def get_display_name(self) -> str:
        """The folder's name."""
        return "" if self.folder is None else self.folder.name

    def get_creation_date(self) -> float | None:
        """When the folder was made."""
        return None if self.folder is None else timestamp(self.folder.created_at)

    def get_last_modified(self) -> float | None:
        """Folders keep no modification time: their creation's."""
        return self.get_creation_date()

    def get_etag(self) -> None:
        """Collections have no entity tag."""
        return None

    def support_etag(self) -> bool:
        """Collections have no entity tag."""
        return False

    def get_used_bytes(self) -> int:
        """The organization's stored bytes (RFC 4331 quota-used-bytes)."""
        return usage().used

    def get_available_bytes(self) -> int:
        """What still fits in the organization's quota (quota-available-bytes)."""
        return usage().available

    def get_member_names(self) -> list[str]:
        """The names of the folders and visible files in the place."""
        return [member.name for member in self.get_member_list()]

    def get_member_list(self) -> list[Place | Document]:
        """The place's folders and visible files: one query each (not one lookup per
        name), their dead properties and locks read at once for a PROPFIND."""
        member = user()
        places: list[Place | Document] = [
            Place(join(self.path, folder.name), self.environ, folder)
            for folder in tree.folders_in(member.organization_id, self.place)
        ]
        documents = [
            Document(join(self.path, entry.name), self.environ, entry)
            for entry in tree.entries_in(member, self.place)
        ]
        members = places + documents
        stores.prefetch(self.environ, [m.get_ref_url() for m in members], self.get_ref_url())
        return members

    def get_member(self, name: str) -> Place | Document | None:
        """The folder or visible file of that name in the place."""
        member = user()
        folder = folder_in(self.place, name)
        if folder is not None:
            return Place(join(self.path, name), self.environ, folder)
        entry = tree.file_named(member, self.place, name)
        if entry is not None:
            return Document(join(self.path, name), self.environ, entry)
        return None

    def create_empty_resource(self, name: str) -> NewDocument:
        """A file about to be put (nothing is stored until its bytes have all arrived)."""
        with translated():
            checked_name(name, field="filename")
        return NewDocument(join(self.path, name), self.environ, self.place, name)

    def create_collection(self, name: str) -> None:
        """MKCOL: a new folder in this place."""
        folders_changed()
        with translated():
            folders.create_folder(user(), name, self.place or "root")

    def support_recursive_delete(self) -> bool:
        """A folder goes to the trash whole."""
        return True

    def delete(self) -> None:
        """The folder, with everything in it, to the trash."""
        if self.folder is None:
            raise DAVError(HTTP_FORBIDDEN, "the top level cannot be deleted")
        folders_changed()
        with translated():
            trash.trash_folder(user(), self.folder.id)
        self.remove_all_properties(recursive=True)
        self.remove_all_locks(recursive=True)

    def support_recursive_move(self, dest_path: str) -> bool:
        """A folder moves whole (one UPDATE of its row)."""
        return self.folder is not None

    def move_recursive(self, dest_path: str) -> list[Any]:
        """MOVE: rename and/or move the folder."""
        assert self.folder is not None
        parent, name = destination(self.provider, dest_path, self.environ)
        folders_changed()
        with translated():
            folders.update_folder(user(), self.folder.id, name=name, parent_raw=parent or "root")
        self.remove_all_locks(recursive=True)
        if self.provider.prop_manager:
            self.provider.prop_manager.move_properties(
                self.get_ref_url(), util.quote(dest_path.rstrip("/") + "/"), True
            )
        return []

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        """COPY of a folder: the same folder at the destination (its members are copied one
        by one after it); kept when it is there already."""
        parent, name = destination(self.provider, dest_path, self.environ)
        if folder_in(parent, name) is None:
            folders_changed()
            with translated():
                folders.create_folder(user(), name, parent or "root")


def no_quota(res: DAVNonCollection, name: str) -> Any:
    """A file's property: the quota is a folder's (RFC 4331), so a file has none (WsgiDAV
    would answer it empty)."""
    if name in QUOTA_PROPERTIES:
        raise DAVError(HTTP_NOT_FOUND)
    return DAVNonCollection.get_property_value(res, name)


class Document(QuotedOnce, DAVNonCollection):  # type: ignore[misc]
    """A file, as the member sees it (see files/tree.py)."""

    get_property_value = no_quota

    def __init__(self, path: str, environ: dict[str, Any], entry: Entry) -> None:
        super().__init__(path, environ)
        self.entry = entry
        self.receiving: intake.Receiving | None = None
        # The entity tag of the bytes this request put (the PUT's answer carries it).
        self.put_etag: str | None = None

    def get_content_length(self) -> int:
        """The size of the bytes the member reads."""
        return self.entry.size

    def get_content_type(self) -> str:
        """The served type of a ready file; octet-stream for one still being validated."""
        return served_type(self.entry.mime_type)

    def get_display_name(self) -> str:
        """The file's name."""
        return self.entry.name

    def get_creation_date(self) -> float | None:
        """When these bytes arrived."""
        return timestamp(self.entry.modified)

    def get_last_modified(self) -> float | None:
        """When these bytes arrived (a new version's, for a replaced file)."""
        return timestamp(self.entry.modified)

    def get_etag(self) -> str:
        """The SHA-256 of the bytes; before validation has computed it, the upload's id."""
        return self.put_etag or self.entry.sha256 or f"upload-{self.entry.bytes_id}"

    def support_etag(self) -> bool:
        """Every file has one."""
        return True

    def support_ranges(self) -> bool:
        """Byte ranges are served."""
        return True

    def get_content(self) -> RecordedReader:
        """A reader of the bytes; its close records the download, as the API's does."""
        try:
            reader = get_storage().open(self.entry.key)
        except FileNotFoundError:
            with translated():
                raise Gone("file_missing", "the file's bytes are missing from storage") from None
            raise
        member = user()
        sent = activity.download_recorder(
            member.organization_id,
            activity.acting(member),
            activity.on_file(self.entry.id, self.entry.name),
        )
        return RecordedReader(reader, sent)

    def begin_write(self, *, content_type: str | None = None) -> Receiver:
        """PUT onto the file: its bytes stream into intake, to become a new version."""
        self.receiving = begin_receiving(self.environ, self.entry.name)
        return Receiver(self.receiving)

    def end_write(self, *, with_errors: bool) -> None:
        """The body has arrived: a new version of the file (or nothing, on errors)."""
        self.put_etag = finish_receiving(self.receiving, self.entry.folder_id, with_errors)

    def delete(self) -> None:
        """The file to the trash."""
        with translated():
            trash.trash_file(user(), self.entry.id)
        self.remove_all_properties(recursive=False)
        self.remove_all_locks(recursive=False)

    def support_recursive_move(self, dest_path: str) -> bool:
        """A file moves by renaming its row (no bytes copied)."""
        return True

    def move_recursive(self, dest_path: str) -> list[Any]:
        """MOVE: rename and/or move the file."""
        parent, name = destination(self.provider, dest_path, self.environ)
        with translated():
            placement.change_file(user(), self.entry.id, filename=name, folder_raw=parent or "root")
        self.remove_all_locks(recursive=False)
        if self.provider.prop_manager:
            self.provider.prop_manager.move_properties(
                self.get_ref_url(), util.quote(dest_path), False
            )
        return []

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        """COPY: a new file of the same bytes at the destination, within the quota."""
        parent, name = destination(self.provider, dest_path, self.environ)
        with translated():
            copies.copy_file(user(), self.entry, parent, name, via=VIA)
        if self.provider.prop_manager:
            self.provider.prop_manager.copy_properties(self.get_ref_url(), util.quote(dest_path))


class NewDocument(DAVNonCollection):  # type: ignore[misc]
    """A file being put where no file is: it exists once its bytes have all arrived."""

    get_property_value = no_quota

    def __init__(self, path: str, environ: dict[str, Any], place: str | None, name: str) -> None:
        super().__init__(path, environ)
        self.place = place
        self.name = name
        self.receiving: intake.Receiving | None = None
        # The entity tag of the bytes this request put, once put.
        self.put_etag: str | None = None

    def get_content_length(self) -> int:
        """Nothing yet."""
        return 0

    def get_content_type(self) -> str:
        """Unknown until validated."""
        return "application/octet-stream"

    def get_etag(self) -> str | None:
        """The stored file's, once put."""
        return self.put_etag

    def support_etag(self) -> bool:
        """Once put."""
        return self.put_etag is not None

    def get_content(self) -> IO[bytes]:
        """Nothing to read yet."""
        raise DAVError(HTTP_NOT_FOUND)

    def delete(self) -> None:
        """A lock-null resource goes with its locks."""
        self.remove_all_properties(recursive=False)
        self.remove_all_locks(recursive=False)

    def begin_write(self, *, content_type: str | None = None) -> Receiver:
        """PUT: the bytes stream into intake under a fresh id."""
        self.receiving = begin_receiving(self.environ, self.name)
        return Receiver(self.receiving)

    def end_write(self, *, with_errors: bool) -> None:
        """The body has arrived: the new file, within the quota (or nothing, on errors)."""
        self.put_etag = finish_receiving(self.receiving, self.place, with_errors)


class RecordedReader:
    """A reader of stored bytes that calls `sent` once, when it is closed."""

    def __init__(self, reader: IO[bytes], sent: Callable[[], None]) -> None:
        self.reader = reader
        self.sent: Callable[[], None] | None = sent

    def read(self, size: int = -1) -> bytes:
        """The next bytes."""
        return self.reader.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to a range's start."""
        return self.reader.seek(offset, whence)

    def close(self) -> None:
        """Close the reader and record the download."""
        self.reader.close()
        if self.sent is not None:
            sent, self.sent = self.sent, None
            sent()


class Receiver:
    """The writable stream WsgiDAV hands a PUT's body to, chunk by chunk, into intake; past
    MAX_FILE_SIZE it stops (413) rather than store more."""

    def __init__(self, receiving: intake.Receiving) -> None:
        self.receiving = receiving
        self.limit = intake.max_file_size()

    def write(self, data: bytes) -> int:
        """Pass a chunk on to the store."""
        if self.receiving.size + len(data) > self.limit:
            with translated():
                intake.check_size(self.receiving.size + len(data), field="file")
        return self.receiving.write(data)

    def close(self) -> None:
        """The body has ended: `end_write` records it."""


def begin_receiving(environ: dict[str, Any], name: str) -> intake.Receiving:
    """Begin a PUT's intake; a declared length over MAX_FILE_SIZE is refused (413) before
    any byte is read."""
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > intake.max_file_size():
        raise DAVError(HTTP_REQUEST_ENTITY_TOO_LARGE, "the file is larger than the limit")
    return intake.receive(user(), name, via=VIA)


def finish_receiving(
    receiving: intake.Receiving | None, place: str | None, with_errors: bool
) -> str | None:
    """Record a PUT's bytes (a new file, or a new version of the file of the name), or
    discard them when the body did not arrive whole. Returns the entity tag the bytes now
    have, as a lookup of the file would give it to their uploader: the upload's id, since
    validation has not hashed them yet (no second lookup of the file)."""
    if receiving is None:
        return None
    if with_errors:
        receiving.discard()
        return None
    try:
        with translated():
            accepted = intake.accept(
                user(),
                receiving,
                folder_id=place,
                on_conflict=OnConflict.REPLACE,
                allow_empty=True,
            )
    finally:
        receiving.discard()
    return f"upload-{accepted.version_id or accepted.file_id}"


def destination(
    provider: DAVProvider, dest_path: str, environ: dict[str, Any]
) -> tuple[str | None, str]:
    """The folder (None: the top level) and name a COPY or MOVE destination names."""
    parent = provider.get_resource_inst(util.get_uri_parent(dest_path), environ)
    if not isinstance(parent, Place):
        raise DAVError(HTTP_BAD_REQUEST, "the destination's parent is not a folder")
    return parent.place, util.get_uri_name(dest_path.rstrip("/"))


class CofferProvider(DAVProvider):  # type: ignore[misc]
    """Resolves `/dav/` paths within the authenticated member's organization."""

    def is_readonly(self) -> bool:
        """Writes are allowed (a read-only token is refused by the gate)."""
        return False

    def custom_request_handler(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        default_handler: Callable[..., Iterable[bytes]],
    ) -> Iterable[bytes]:
        """WsgiDAV's hook before each method: a PROPFIND of Depth 1 of a folder is answered
        from its listing (multistatus.py); everything else as WsgiDAV does."""
        if multistatus.handles(environ):
            res = self.get_resource_inst(environ["PATH_INFO"], environ)
            if isinstance(res, Place):
                return multistatus.listing(res, environ, start_response)
        return default_handler(environ, start_response)

    def get_resource_inst(
        self, path: str, environ: dict[str, Any]
    ) -> Place | Document | NewDocument | None:
        """The folder or file at a path, or None. The last name is looked up as a file
        first unless the path ends in a slash (a client naming a collection): names are
        unique across a place's files and folders, so the order only saves a query."""
        self._count_get_resource_inst += 1
        member = user()
        names = [part for part in path.strip("/").split("/") if part]
        place: Folder | None = None
        walked = ""
        for index, name in enumerate(names):
            walked = join(walked, name)
            where = None if place is None else place.id
            last = index == len(names) - 1
            if last and not path.endswith("/"):
                entry = tree.file_named(member, where, name)
                if entry is not None:
                    return Document(walked, environ, entry)
            folder = folder_in(where, name)
            if folder is not None:
                place = folder
                continue
            if not last:
                return None
            if path.endswith("/"):
                entry = tree.file_named(member, where, name)
                if entry is not None:
                    return Document(walked, environ, entry)
            return self.locked_null(walked, environ, where, name)
        return Place(walked or "/", environ, place)

    def locked_null(
        self, path: str, environ: dict[str, Any], place: str | None, name: str
    ) -> NewDocument | None:
        """A path that names nothing but holds a lock (a LOCK of an unmapped URL): a
        lock-null resource until a PUT makes it a file."""
        placeholder = NewDocument(path, environ, place, name)
        if self.lock_manager and self.lock_manager.get_url_lock_list(placeholder.get_ref_url()):
            return placeholder
        return None
