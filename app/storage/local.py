"""The `local` backend: files under UPLOAD_FOLDER on this host's disk."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..libc import libc
from .base import (
    RESUMABLE_DIR,
    Storage,
    StorageFull,
    StorageUnavailable,
    StoredObject,
    Upload,
)

# In-flight uploads are written here, inside UPLOAD_FOLDER so the final rename stays
# on one file system.
TEMP_DIR = ".tmp"
# Folders of UPLOAD_FOLDER that hold no stored file.
WORK_DIRS = frozenset({TEMP_DIR, RESUMABLE_DIR})
# The file system is full, or the disk quota of Coffer's user is used up.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


# Once this much more of an upload is written, the kernel is asked to start writing it to
# disk (sync_file_range), so the fsync at the end waits for the last stretch only instead
# of the whole file: the disk works while the rest of the body is still being read.
WRITEBACK_EVERY = 8 * 1024 * 1024
# The same within a resumable upload's PATCH, whose `fsync` comes after 8 MiB or so: a
# hint every 512 KiB chunk cost more in calls than it saved (docs/PERFORMANCE.md).
PART_WRITEBACK_EVERY = 2 * 1024 * 1024
# sync_file_range(2): start writeback of the range's dirty pages, do not wait for it.
SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range on Linux, else None."""
    function = getattr(libc(), "sync_file_range", None)
    if function is None:
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a file's range to disk; a hint, never an error."""
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def drop_cached(fd: int, offset: int, length: int) -> None:
    """Let the kernel drop a synced range of a file from its page cache; a hint, never an
    error.

    A resumable upload's bytes are not read again until its file is validated, maybe much
    later: kept, a 1 GiB upload would push 1 GiB of what is read out of the cache. Dropped
    once clean, the next PATCH writes into the memory they leave, which matters on virtual
    machines that hand memory back to their host (docs/PERFORMANCE.md)."""
    advise = getattr(os, "posix_fadvise", None)  # not on macOS
    if advise is not None and length > 0:
        advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


@contextmanager
def no_space_is_full() -> Iterator[None]:
    """Turn a full disk into StorageFull, so it is answered 507 instead of 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        raise StorageFull(str(exc)) from exc


class LocalUpload(Upload):
    """A temp file under UPLOAD_FOLDER/.tmp, renamed into place once finished."""

    def __init__(self, storage: LocalStorage, key: str) -> None:
        self.key = key
        self.size = 0
        self._storage = storage
        self._finished = False
        with no_space_is_full():
            storage.temp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=storage.temp_dir, prefix="upload-", suffix=".part")
        self.temp_path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._written_back = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        with no_space_is_full():
            written = self._file.write(data)
            if self.size - self._written_back >= WRITEBACK_EVERY:
                self._file.flush()
                start_writeback(
                    self._file.fileno(), self._written_back, self.size - self._written_back
                )
                self._written_back = self.size
            return written

    def finish(self) -> None:
        """fsync, then rename into place: the bytes survive a crash once a row names them."""
        target = self._storage.path(self.key)
        with no_space_is_full():
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.temp_path, target)
            except BaseException:
                self._storage.remove(self.key)
                raise
        self._finished = True

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        self.temp_path.unlink(missing_ok=True)
        if self._finished:
            self._storage.remove(self.key)
            self._finished = False


class LocalStorage(Storage):
    """Files at UPLOAD_FOLDER/<key>."""

    name = "local"
    min_part_size = 0  # parts of any size: each goes straight into one file

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.temp_dir = self.root / TEMP_DIR
        self.resumable_dir = self.root / RESUMABLE_DIR

    def path(self, key: str) -> Path:
        """The absolute path of a key."""
        return self.root / key

    def begin_upload(self, key: str) -> LocalUpload:
        return LocalUpload(self, key)

    def open(self, key: str) -> IO[bytes]:
        return open(self.path(key), "rb")

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def remove(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        # The folders below the organization's that are now empty: the per-file folder of
        # `<organization_id>/<file_id>/<name>`, and that of a file's previews
        # (`<name>.preview/`) with it.
        parent = Path(key).parent
        while len(parent.parts) >= 2:
            try:
                self.path(parent.as_posix()).rmdir()
            except OSError:
                break
            parent = parent.parent

    def objects(self) -> Iterator[StoredObject]:
        return self._files_in(self.root, skip=WORK_DIRS)

    def objects_under(self, folder: str) -> Iterator[StoredObject]:
        return self._files_in(self.path(folder))

    def _files_in(
        self, directory: Path, skip: frozenset[str] = frozenset()
    ) -> Iterator[StoredObject]:
        """Every file under a folder, but those in `skip` (names of its own subfolders)."""
        now = time.time()
        if not directory.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(directory):
            if Path(dirpath) == directory:
                dirnames[:] = [name for name in dirnames if name not in skip]
            for filename in filenames:
                path = Path(dirpath) / filename
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # removed meanwhile
                key = path.relative_to(self.root).as_posix()
                yield StoredObject(key, stat.st_size, now - stat.st_mtime)

    def pending_uploads(self) -> Iterator[StoredObject]:
        """Temp files of uploads in flight (or abandoned by a crash), and the files of
        unfinished resumable uploads."""
        now = time.time()
        for folder in (TEMP_DIR, RESUMABLE_DIR):
            directory = self.root / folder
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                yield StoredObject(f"{folder}/{path.name}", stat.st_size, now - stat.st_mtime)

    # ---- parts ----------------------------------------------------------------------
    # A part may have any size, and the parts go in order into one file,
    # UPLOAD_FOLDER/.resumable/<parts id>, renamed into place once complete: no copy.

    def parts_path(self, parts_id: str) -> Path:
        """The file the parts are written to, in order."""
        return self.resumable_dir / parts_id

    def begin_parts(self, key: str, name: str) -> str:
        """The parts are named after the upload: `.resumable/<name>`."""
        with no_space_is_full():
            self.resumable_dir.mkdir(parents=True, exist_ok=True)
        return name

    def put_part(
        self,
        key: str,
        parts_id: str,
        number: int,
        chunks: Iterable[bytes | bytearray],
        start: int,
    ) -> dict[str, Any]:
        """Append to the parts' file, cut back to `start` first (a step that failed after
        writing left bytes nobody counts), then fsync.

        The writeback of every PART_WRITEBACK_EVERY bytes starts as soon as they are
        written, while the next chunks are read and hashed (docs/PERFORMANCE.md has what
        that gains and what the fsync still costs); once synced, the part leaves the page
        cache (drop_cached)."""
        path = self.parts_path(parts_id)
        with no_space_is_full():
            self.resumable_dir.mkdir(parents=True, exist_ok=True)
            # Appending mode: every write lands at the end, which the cut puts at `start`.
            with open(path, "a+b") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell() < start:
                    raise StorageUnavailable(f"the bytes of upload {parts_id} are missing")
                handle.truncate(start)
                handle.seek(start)
                position = written_back = start
                for chunk in chunks:
                    handle.write(chunk)
                    position += len(chunk)
                    if position - written_back >= PART_WRITEBACK_EVERY:
                        handle.flush()
                        start_writeback(handle.fileno(), written_back, position - written_back)
                        written_back = position
                handle.flush()
                os.fsync(handle.fileno())
                drop_cached(handle.fileno(), start, position - start)
        return {"PartNumber": number}

    def complete_parts(
        self, key: str, parts_id: str, parts: list[dict[str, Any]], size: int
    ) -> None:
        """Rename the parts' file into place (one file system: UPLOAD_FOLDER)."""
        source, target = self.parts_path(parts_id), self.path(key)
        with no_space_is_full():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
            except FileNotFoundError:
                if self.size(key) != size:  # not renamed by an earlier run either
                    raise

    def abort_parts(self, key: str, parts_id: str) -> None:
        self.parts_path(parts_id).unlink(missing_ok=True)

    def parts_piece(self, key: str, parts_id: str) -> str:
        return f"{RESUMABLE_DIR}/{parts_id}"

    def discard_pending(self, key: str) -> None:
        """Remove an abandoned upload found by `pending_uploads`."""
        (self.root / key).unlink(missing_ok=True)

    def check(self) -> None:
        """The upload folder exists (or can be made) and takes a file."""
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.temp_dir, prefix="readyz-"):
                pass
        except OSError as exc:
            raise StorageUnavailable(f"{self.root} is not writable: {exc.strerror}") from exc

    def exists(self) -> bool:
        return self.root.is_dir()

    def describe(self) -> str:
        return f"local disk at {self.root}"
