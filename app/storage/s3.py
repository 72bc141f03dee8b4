"""The `s3` backend: objects in an S3-compatible bucket, under S3_PREFIX, through boto3."""

from __future__ import annotations

import functools
import io
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from ..content_disposition import attachment
from ..libc import large_buffers_return_to_the_system
from .base import (
    RESUMABLE_DIR,
    Storage,
    StorageUnavailable,
    StoredObject,
    Upload,
)

log = logging.getLogger(__name__)

# Uploads stream into an S3 multipart upload of the final key, one part per PART_SIZE
# bytes received, sent as soon as it fills: a request holds at most one part in memory
# and needs no local disk, whatever the file's size. S3 wants parts of at least 5 MiB
# (all but the last) and at most 10,000 of them, so 8 MiB parts reach 80 GB. A file
# smaller than one part is sent by a single put_object at finish: one request, and no
# multipart upload to clean up if the client goes away.
PART_SIZE = 8 * 1024 * 1024
# Parts on their way to the store at once, per upload: one is stored while the next
# travels. The next part fills once fewer are in flight, so an upload holds at most
# PARTS_IN_FLIGHT part buffers (the 1 GiB upload's memory target allows two).
PARTS_IN_FLIGHT = 2
# How much of an object a reader asks the connection for at a time.
READ_BUFFER = 256 * 1024
# A hung or unreachable store must answer within a bounded time (a 503), not hold a
# request thread: short connect and read timeouts, and one retry at most.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
MAX_ATTEMPTS = 2
# Error codes S3 answers for a key or an upload that is not there.
# Keys per DeleteObjects request: S3's bound.
DELETE_BATCH = 1000
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
NO_UPLOAD_CODES = frozenset({"404", "NoSuchUpload"})
# Separates the object key from the upload id in `pending_uploads` keys; safe names
# never contain it.
UPLOAD_ID_MARK = "?uploadId="


@functools.cache
def shared_loader() -> botocore.loaders.Loader:
    """botocore's reader of its service models, loaded once per process: reading them
    again costs most of a second for each new client."""
    return botocore.loaders.create_loader()


def new_session() -> boto3.session.Session:
    """A boto3 session of its own (credentials resolved afresh) on the shared models."""
    core = botocore.session.get_session()
    core.register_component("data_loader", shared_loader())
    return boto3.session.Session(botocore_session=core)


def error_code(exc: ClientError) -> str:
    """The S3 error code of a refused request (`NoSuchKey`, `AccessDenied`, `403`, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def refused_with(exc: StorageUnavailable, codes: frozenset[str]) -> bool:
    """Whether S3 refused the call behind `exc` with one of these error codes."""
    cause = exc.__cause__
    return isinstance(cause, ClientError) and error_code(cause) in codes


@contextmanager
def unavailable_on_error(action: str) -> Iterator[None]:
    """Turn a refused or failed S3 call into StorageUnavailable (a 503)."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        if code == "403":
            message = message or "access denied (check the credentials)"
        elif code == "404":
            message = message or "the bucket does not exist"
        raise StorageUnavailable(f"S3 refused to {action}: {code} {message}".strip()) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"S3 could not {action}: {exc}") from exc


class S3Upload(Upload):
    """A multipart upload to the final key, begun once a first part fills (see PART_SIZE).

    Full parts go to the store from a small pool of sender threads while the request
    thread fills the next one (see PARTS_IN_FLIGHT); each part is a bytearray handed to
    boto3 as it is, and reused once its part is stored.
    """

    def __init__(self, storage: S3Storage, key: str) -> None:
        self.key = key
        self.size = 0
        self._storage = storage
        self._object_key = storage.object_key(key)
        # The part being filled: grows until the first part is full (a small file never
        # holds more than its size), then is one of the reused part-sized buffers.
        self._current = bytearray()
        self._filled = 0
        self._spare: list[bytearray] = []
        self._upload_id: str | None = None
        self._numbers = 0
        self._in_flight: deque[tuple[Future[dict[str, Any]], bytearray]] = deque()
        self._senders: ThreadPoolExecutor | None = None
        self._parts: list[dict[str, Any]] = []
        self._finished = False

    def write(self, data: bytes) -> int:
        self.size += len(data)
        with memoryview(data) as view:
            start = 0
            while start < len(view):
                piece = view[start : start + PART_SIZE - self._filled]
                if self._filled == len(self._current):
                    self._current += piece
                else:
                    self._current[self._filled : self._filled + len(piece)] = piece
                self._filled += len(piece)
                start += len(piece)
                if self._filled == PART_SIZE:
                    self._send_full_part()
        return len(data)

    def _send_full_part(self) -> None:
        """Hand the full part to a sender; take a free buffer for the next one."""
        if self._upload_id is None:
            self._upload_id = self._storage._begin_multipart(self.key)
            self._senders = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="s3-part")
        assert self._senders is not None
        self._numbers += 1
        part = self._current
        sent = self._senders.submit(
            self._storage._send_part, self.key, self._upload_id, self._numbers, part
        )
        self._in_flight.append((sent, part))
        while len(self._in_flight) >= PARTS_IN_FLIGHT:
            self._collect_oldest()
        self._current = self._spare.pop() if self._spare else bytearray(PART_SIZE)
        self._filled = 0

    def _collect_oldest(self) -> None:
        """Wait for the oldest part in flight; its buffer is free again once it is stored."""
        sent, part = self._in_flight.popleft()
        try:
            self._parts.append(sent.result())
        finally:
            self._spare.append(part)

    def _drain(self) -> None:
        """Wait for every part in flight (the first failure is raised once all are done)."""
        failure: Exception | None = None
        while self._in_flight:
            try:
                self._collect_oldest()
            except Exception as exc:  # noqa: BLE001 - raised below, after the rest
                failure = failure or exc
        if self._senders is not None:
            self._senders.shutdown()
            self._senders = None
        if failure is not None:
            raise failure

    def finish(self) -> None:
        """Send what is left: one put_object for a small file, else the last part and
        the completion that makes the object appear under its key."""
        client, bucket = self._storage.client, self._storage.bucket
        del self._current[self._filled :]  # a reused buffer holds older bytes past the end
        if self._upload_id is None:
            with unavailable_on_error("store a file"):
                client.put_object(Bucket=bucket, Key=self._object_key, Body=self._current)
        else:
            self._spare.clear()
            if self._current:
                self._numbers += 1
                self._parts.append(
                    self._storage._send_part(
                        self.key, self._upload_id, self._numbers, self._current
                    )
                )
            self._drain()
            self._parts.sort(key=lambda part: int(part["PartNumber"]))
            with unavailable_on_error("complete an upload"):
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._object_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
            self._upload_id = None
        self._release_buffers()
        self._finished = True

    def _release_buffers(self) -> None:
        self._current = bytearray()
        self._filled = 0
        self._spare.clear()

    def abort(self) -> None:
        """Abort the multipart upload, or delete the finished object.

        Parts still in flight are waited for first: S3 may keep a part that arrives after
        the abort. A store that cannot be reached is logged, not raised: the caller's own
        error (a 507, a failed commit) is the answer, and `storage check --fix` removes
        the leftover later. A second call tries again.
        """
        self._release_buffers()
        try:
            self._drain()
        except Exception:  # noqa: BLE001 - the upload is being thrown away anyway
            log.debug("a part of %s failed before the abort", self.key)
        client, bucket = self._storage.client, self._storage.bucket
        try:
            if self._upload_id is not None:
                try:
                    with unavailable_on_error("abort an upload"):
                        client.abort_multipart_upload(
                            Bucket=bucket, Key=self._object_key, UploadId=self._upload_id
                        )
                except StorageUnavailable as exc:
                    if not refused_with(exc, NO_UPLOAD_CODES):
                        raise
                self._upload_id = None
            if self._finished:
                self._storage.remove(self.key)
                self._finished = False
        except StorageUnavailable as exc:
            log.warning("could not remove the upload of %s: %s", self.key, exc)


class S3Reader(io.RawIOBase):
    """A seekable reader of one object: reads stream a GET from the current position.

    Nothing is fetched until the first read, and a seek only drops the open response,
    so each position read from costs one ranged GET (never one per read).
    """

    def __init__(self, storage: S3Storage, key: str, size: int) -> None:
        super().__init__()
        self._storage = storage
        self._key = key
        self._size = size
        self._position = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop_body()
            self._position = position
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size or len(buffer) == 0:
            return 0
        if self._body is None:
            with unavailable_on_error("read a file"):
                answer = self._storage.client.get_object(
                    Bucket=self._storage.bucket,
                    Key=self._storage.object_key(self._key),
                    Range=f"bytes={self._position}-",
                )
            self._body = answer["Body"]
        with unavailable_on_error("read a file"):
            data = self._body.read(min(len(buffer), self._size - self._position))
        if not data:
            raise StorageUnavailable(f"S3 ended the object {self._key} early")
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3Storage(Storage):
    """Objects at `<S3_PREFIX><key>` in S3_BUCKET."""

    name = "s3"
    # S3 wants parts of at least 5 MiB but the last: they are cut to PART_SIZE.
    min_part_size = PART_SIZE

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str = "",
        region: str = "us-east-1",
        presigned_downloads: bool = False,
        presign_seconds: int = 60,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self.presigned_downloads = presigned_downloads
        self.presign_seconds = presign_seconds
        large_buffers_return_to_the_system()
        config = BotoConfig(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            # Path-style addressing is what S3-compatible servers reliably support.
            s3={"addressing_style": "path"} if endpoint_url else {},
            signature_version="s3v4",
            max_pool_connections=32,
        )
        # Credentials come from boto3's usual chain: environment, profile, instance role.
        self.client: Any = new_session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region, config=config
        )

    def object_key(self, key: str) -> str:
        """The bucket key of a Coffer key."""
        return f"{self.prefix}{key}"

    def begin_upload(self, key: str) -> S3Upload:
        return S3Upload(self, key)

    def open(self, key: str) -> IO[bytes]:
        size = self.size(key)
        if size is None:
            raise FileNotFoundError(f"no object {self.object_key(key)} in {self.bucket}")
        return io.BufferedReader(S3Reader(self, key, size), buffer_size=READ_BUFFER)

    def size(self, key: str) -> int | None:
        try:
            with unavailable_on_error("read a file's size"):
                head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except StorageUnavailable as exc:
            if refused_with(exc, MISSING_CODES):
                return None
            raise
        return int(head["ContentLength"])

    def remove(self, key: str) -> None:
        with unavailable_on_error("delete a file"):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def remove_many(self, keys: list[str]) -> None:
        """DeleteObjects, up to 1,000 keys a request (S3's bound), instead of a request each."""
        for start in range(0, len(keys), DELETE_BATCH):
            objects = [{"Key": self.object_key(k)} for k in keys[start : start + DELETE_BATCH]]
            with unavailable_on_error("delete files"):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            refused = answer.get("Errors") or []
            if refused:
                first = refused[0]
                raise StorageUnavailable(
                    f"S3 refused to delete {len(refused)} file(s): "
                    f"{first.get('Code')} {first.get('Message') or ''}".strip()
                )

    def objects(self) -> Iterator[StoredObject]:
        """Every object under the prefix but the tails of resumable uploads."""
        now = time.time()
        with unavailable_on_error("list the bucket"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    if not key or key.endswith("/"):
                        continue  # folder markers some servers list
                    if key.startswith(f"{RESUMABLE_DIR}/"):
                        continue  # pieces of unfinished uploads: see pending_uploads
                    age = now - item["LastModified"].timestamp()
                    yield StoredObject(key, int(item["Size"]), age)

    def pending_uploads(self) -> Iterator[StoredObject]:
        """Multipart uploads under the prefix, keyed `<key>?uploadId=<id>`, sized by
        the parts they hold; then the tail objects of resumable uploads."""
        now = time.time()
        with unavailable_on_error("list the bucket's uploads"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Uploads", []):
                    key = str(item["Key"])
                    upload_id = str(item["UploadId"])
                    size = self._parts_size(key, upload_id)
                    age = now - item["Initiated"].timestamp()
                    relative = key[len(self.prefix) :]
                    yield StoredObject(f"{relative}{UPLOAD_ID_MARK}{upload_id}", size, age)
            yield from self.objects_under(RESUMABLE_DIR)

    def objects_under(self, folder: str) -> Iterator[StoredObject]:
        now = time.time()
        with unavailable_on_error("list the bucket"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.object_key(f"{folder}/")
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    age = now - item["LastModified"].timestamp()
                    yield StoredObject(key, int(item["Size"]), age)

    def _parts_size(self, object_key: str, upload_id: str) -> int:
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=object_key, UploadId=upload_id
        )
        return sum(int(part["Size"]) for page in pages for part in page.get("Parts", []))

    def discard_pending(self, key: str) -> None:
        """Abort a multipart upload found by `pending_uploads`, or delete a tail object."""
        if UPLOAD_ID_MARK not in key:
            self.remove(key)
            return
        relative, _, upload_id = key.rpartition(UPLOAD_ID_MARK)
        try:
            with unavailable_on_error("abort an upload"):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.object_key(relative), UploadId=upload_id
                )
        except StorageUnavailable as exc:
            if not refused_with(exc, NO_UPLOAD_CODES):
                raise

    def put(self, key: str, data: bytes | bytearray) -> None:
        """One put_object."""
        with unavailable_on_error("store a file"):
            self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def get(self, key: str) -> bytes:
        """One get_object, read whole."""
        try:
            with unavailable_on_error("read a file"):
                answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
                data: bytes = answer["Body"].read()
        except StorageUnavailable as exc:
            if refused_with(exc, MISSING_CODES):
                missing = f"no object {self.object_key(key)} in {self.bucket}"
                raise FileNotFoundError(missing) from exc
            raise
        return data

    # ---- parts: a multipart upload of the final key ------------------------------------

    def begin_parts(self, key: str, name: str) -> str:
        """create_multipart_upload: S3 names the parts (its upload id)."""
        return self._begin_multipart(key)

    def put_part(
        self,
        key: str,
        parts_id: str,
        number: int,
        chunks: Iterable[bytes | bytearray],
        start: int,
    ) -> dict[str, Any]:
        """upload_part of the chunks joined (S3 needs each part's length up front)."""
        pieces = list(chunks)
        if len(pieces) == 1 and isinstance(pieces[0], bytearray):
            body = pieces[0]
        else:
            body = bytearray().join(pieces)
        return self._send_part(key, parts_id, number, body)

    def _begin_multipart(self, key: str) -> str:
        with unavailable_on_error("begin an upload"):
            answer = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(key)
            )
        return str(answer["UploadId"])

    def _send_part(self, key: str, s3_upload: str, number: int, body: bytearray) -> dict[str, Any]:
        # A part sent again under its number (a step retried) replaces the earlier one.
        # A bytearray goes out as it is: boto3 wraps bytes (not bytearray) in a BytesIO,
        # then reads it back in small pieces to sign, checksum and send it.
        with unavailable_on_error("store a part of a file"):
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.object_key(key),
                UploadId=s3_upload,
                PartNumber=number,
                Body=body,
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def complete_parts(
        self, key: str, parts_id: str, parts: list[dict[str, Any]], size: int
    ) -> None:
        """complete_multipart_upload with the parts' records."""
        try:
            with unavailable_on_error("complete an upload"):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.object_key(key),
                    UploadId=parts_id,
                    MultipartUpload={"Parts": parts},
                )
        except StorageUnavailable as exc:
            # Completed by an earlier run whose row did not commit.
            if not (refused_with(exc, NO_UPLOAD_CODES) and self.size(key) == size):
                raise

    def abort_parts(self, key: str, parts_id: str) -> None:
        self.discard_pending(self.parts_piece(key, parts_id))

    def parts_piece(self, key: str, parts_id: str) -> str:
        return f"{key}{UPLOAD_ID_MARK}{parts_id}"

    def check(self) -> None:
        """The bucket answers Coffer's credentials (HEAD: nothing is written)."""
        with unavailable_on_error(f"open bucket {self.bucket}"):
            self.client.head_bucket(Bucket=self.bucket)

    def exists(self) -> bool:
        try:
            self.check()
        except StorageUnavailable:
            return False
        return True

    def download_url(self, key: str, filename: str, mime_type: str) -> str | None:
        """A presigned GET carrying the download's headers, when S3_PRESIGNED_DOWNLOADS."""
        if not self.presigned_downloads:
            return None
        with unavailable_on_error("sign a download"):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self.object_key(key),
                    "ResponseContentDisposition": attachment(filename),
                    "ResponseContentType": mime_type,
                },
                ExpiresIn=self.presign_seconds,
            )
        return url

    def describe(self) -> str:
        where = self.endpoint_url or f"AWS {self.region}"
        return f"s3://{self.bucket}/{self.prefix} at {where}"
