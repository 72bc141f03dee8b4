"""The one file-storage interface: every byte Coffer keeps goes through a `Storage`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

# Where the pieces of unfinished resumable uploads live, under the backend's own root
# (UPLOAD_FOLDER, or S3_PREFIX): never a file's key, which starts with an organization id.
RESUMABLE_DIR = ".resumable"

# A backend's own record of a resumable upload's pieces (an S3 upload id, part ETags, a
# tail object): JSON-able, kept in the upload's row, opaque to everything else.
ResumableState = dict[str, Any]


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

    @abstractmethod
    def objects(self) -> Iterator[StoredObject]:
        """Every stored object under Coffer's part of the store (not in-flight uploads)."""

    @abstractmethod
    def pending_uploads(self) -> Iterator[StoredObject]:
        """Uploads begun and neither finished nor aborted (in flight, or left by a crash)."""

    @abstractmethod
    def discard_pending(self, key: str) -> None:
        """Remove an abandoned upload found by `pending_uploads`."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless the store can be written now."""

    # Resumable uploads: the bytes arrive in several requests, possibly on several hosts, so
    # everything between two requests is in the store or in the returned state, never in
    # this process. A step that fails leaves the pieces the previous state names intact.

    @abstractmethod
    def append_resumable(
        self,
        upload_id: str,
        key: str,
        state: ResumableState,
        offset: int,
        chunks: Iterable[bytes],
        final: bool,
    ) -> ResumableState:
        """Add the bytes from `offset` on (anything stored past it is dropped first) and
        return the new state; `final` when they end the upload."""

    @abstractmethod
    def finish_resumable(self, upload_id: str, key: str, state: ResumableState, size: int) -> None:
        """Make a complete upload's bytes the object under `key`; harmless when run twice."""

    @abstractmethod
    def discard_resumable(self, upload_id: str, key: str, state: ResumableState) -> None:
        """Remove every piece of an unfinished upload; harmless when run twice."""

    @abstractmethod
    def release_resumable(self, upload_id: str, old: ResumableState, new: ResumableState) -> None:
        """Remove pieces `old` named that `new` no longer needs (once `new` is recorded)."""

    @abstractmethod
    def resumable_pieces(self, upload_id: str, key: str, state: ResumableState) -> set[str]:
        """The keys `pending_uploads` lists for this upload's pieces."""

    def download_url(self, key: str, filename: str, mime_type: str) -> str | None:
        """A URL the client may fetch the bytes from directly, or None to stream them here."""
        return None

    def exists(self) -> bool:
        """Whether the store's location is there at all (a volume may not be mounted)."""
        return True

    def describe(self) -> str:
        """Where the bytes live, for operators."""
        return self.name
