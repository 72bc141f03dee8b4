"""The one file-storage interface: every byte Coffer keeps goes through a `Storage`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

# Where the pieces of unfinished resumable uploads live, under the backend's own root
# (UPLOAD_FOLDER, or S3_PREFIX): never a file's key, which starts with an organization id.
RESUMABLE_DIR = ".resumable"


class StorageUnavailable(Exception):
    """The store cannot be reached or refuses Coffer's requests (a 503, not a 500)."""


class StorageFull(Exception):
    """The store has no room left for this upload (a 507)."""


@dataclass(frozen=True)
class StoredObject:
    """One object found under Coffer's part of the store."""

    key: str
    size: int
    age_seconds: float


class Upload(ABC):
    """Bytes being received for one key: written in order, then finished or aborted.

    `finish` makes the bytes durable under the key; `abort` removes whatever was
    written, the finished object included, so a refused upload leaves nothing behind.
    """

    key: str
    size: int

    @abstractmethod
    def write(self, data: bytes) -> int:
        """Append a chunk, counting its bytes."""

    @abstractmethod
    def finish(self) -> None:
        """Make the bytes durable under `key`."""

    @abstractmethod
    def abort(self) -> None:
        """Remove everything this upload wrote; harmless when called twice."""


class Storage(ABC):
    """A place for the bytes of stored files, addressed by key (`<org>/<file_id>/<name>`)."""

    name: str

    @abstractmethod
    def begin_upload(self, key: str) -> Upload:
        """Start receiving the bytes of a new object."""

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """A seekable binary reader of the object; FileNotFoundError when it is missing."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """Delete the object; a missing one is fine."""

    def remove_many(self, keys: list[str]) -> None:
        """Delete every one of the objects (a purge's); missing ones are fine. A backend
        with a bulk delete overrides this."""
        for key in keys:
            self.remove(key)

    @abstractmethod
    def objects(self) -> Iterator[StoredObject]:
        """Every stored object under Coffer's part of the store (not in-flight uploads)."""

    @abstractmethod
    def objects_under(self, folder: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `folder/`, in work folders (`.resumable`) too."""

    @abstractmethod
    def pending_uploads(self) -> Iterator[StoredObject]:
        """Uploads begun and neither finished nor aborted (in flight, or left by a crash)."""

    @abstractmethod
    def discard_pending(self, key: str) -> None:
        """Remove an abandoned upload found by `pending_uploads`."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless the store can be written now."""

    def put(self, key: str, data: bytes | bytearray) -> None:
        """Store a small object whole (a streamed upload of one chunk)."""
        upload = self.begin_upload(key)
        try:
            upload.write(bytes(data))
            upload.finish()
        except BaseException:
            upload.abort()
            raise

    def get(self, key: str) -> bytes:
        """A small object's bytes, whole; FileNotFoundError when it is missing."""
        with self.open(key) as reader:
            return reader.read()

    # Multipart parts: an object's bytes sent as numbered parts, possibly from several
    # requests on several hosts, then made the object at once. `app/files/resumable_bytes.py`
    # builds resumable uploads on these; the records and ids are JSON-able, kept between
    # requests in the upload's row, never in this process.

    # Every part but the last has exactly this size; 0: a part may have any size.
    min_part_size: int = 0

    @abstractmethod
    def begin_parts(self, key: str, name: str) -> str:
        """Begin receiving parts of the object `key`; returns the id of its parts.

        `name` is unique to the upload (its id): a backend that names the parts itself uses
        it as the id, so a failed first step leaves nothing the next cannot find."""

    @abstractmethod
    def put_part(
        self,
        key: str,
        parts_id: str,
        number: int,
        chunks: Iterable[bytes | bytearray],
        start: int,
    ) -> dict[str, Any]:
        """Store part `number` (from 1) of the bytes `chunks` hold, which start at byte
        `start` of the object; returns the part's JSON-able record. Parts go in order:
        storing a part again (a step retried) starts over from it, and the parts stored
        after it no longer count."""

    @abstractmethod
    def complete_parts(
        self, key: str, parts_id: str, parts: list[dict[str, Any]], size: int
    ) -> None:
        """Make the parts the object under `key`, `size` bytes; harmless when run twice
        (parts already completed and an object of that size are fine)."""

    @abstractmethod
    def abort_parts(self, key: str, parts_id: str) -> None:
        """Remove every part; harmless when run twice, or for parts never begun."""

    @abstractmethod
    def parts_piece(self, key: str, parts_id: str) -> str:
        """The key `pending_uploads` lists these parts under."""

    def download_url(self, key: str, filename: str, mime_type: str) -> str | None:
        """A URL the client may fetch the bytes from directly, or None to stream them here."""
        return None

    def exists(self) -> bool:
        """Whether the store's location is there at all (a volume may not be mounted)."""
        return True

    def describe(self) -> str:
        """Where the bytes live, for operators."""
        return self.name
