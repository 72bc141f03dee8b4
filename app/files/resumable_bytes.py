"""The bytes of a resumable upload, written once over the storage's multipart primitives.

The bytes arrive in several requests, possibly on several hosts, so everything between two
requests is in the store or in the returned state, never in this process. A step that fails
leaves the pieces the previous state names intact.

On a backend whose parts may have any size (local: `min_part_size` 0) each PATCH streams as
one part. Otherwise the bytes are cut into parts of `min_part_size` as they arrive (S3), and
what a PATCH leaves short of a part waits in a tail object `.resumable/<id>/<end offset>` in
the store, never on this host: the next PATCH may reach another one. The tail's name carries
its end offset, so a new tail never overwrites the one the row still names. An upload that
ends before a first part fills is stored by one `put`, and no parts are begun.

The state, JSON-able and kept in the upload's row (`storage_state`):

- `upload_id`: the parts' id `begin_parts` returned, absent or None until then (the name
  is from when it could only be an S3 upload id; kept so rows written before still read);
- `parts`: the records `put_part` returned, in order;
- `tail`: `{"key", "size"}` of the tail object, or None;
- `stored`: true once the whole upload went by one `put`.

A state of `{}` on a backend of parts of any size is an upload whose bytes, if any, are in
parts named after the upload's id (local uploads before the state named them wrote there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..storage import Storage, StorageUnavailable
from ..storage.base import RESUMABLE_DIR

log = logging.getLogger(__name__)

# A resumable upload's record of its pieces (see the module's docstring).
ResumableState = dict[str, Any]


def _parts_id(storage: Storage, upload_id: str, state: ResumableState) -> str | None:
    """The id of the upload's parts, or None when none were begun."""
    parts_id: str | None = state.get("upload_id")
    if parts_id is None and storage.min_part_size == 0:
        # Such a backend names the parts after the upload (begin_parts): a state of {}
        # from before, or from a first PATCH that failed, may have bytes there.
        return upload_id
    return parts_id


def append(
    storage: Storage,
    upload_id: str,
    key: str,
    state: ResumableState,
    offset: int,
    chunks: Iterable[bytes],
    final: bool,
) -> ResumableState:
    """Add the bytes from `offset` on (anything stored past it is dropped first) and return
    the new state; `final` when they end the upload."""
    parts: list[dict[str, Any]] = list(state.get("parts", []))
    parts_id: str | None = state.get("upload_id")
    part_size = storage.min_part_size
    if part_size == 0:
        parts_id = parts_id or storage.begin_parts(key, upload_id)
        parts.append(storage.put_part(key, parts_id, len(parts) + 1, chunks, offset))
        return {"parts": parts, "upload_id": parts_id, "tail": None}

    tail: dict[str, Any] | None = state.get("tail")
    buffer = bytearray(_read_tail(storage, tail) if tail else b"")
    end = offset
    for chunk in chunks:
        buffer += chunk
        end += len(chunk)
        while len(buffer) >= part_size:
            parts_id = parts_id or storage.begin_parts(key, upload_id)
            start = end - len(buffer)
            part = buffer[:part_size]
            parts.append(storage.put_part(key, parts_id, len(parts) + 1, [part], start))
            del buffer[:part_size]
    new: ResumableState = {"parts": parts, "upload_id": parts_id, "tail": None}
    if final and parts_id is None:
        # Smaller than a part: the object itself, in one request.
        storage.put(key, buffer)
        new["stored"] = True
    elif final and parts_id is not None:
        if buffer:  # the last part may be short
            parts.append(
                storage.put_part(key, parts_id, len(parts) + 1, [buffer], end - len(buffer))
            )
    elif buffer:
        tail_key = f"{RESUMABLE_DIR}/{upload_id}/{end}"
        storage.put(tail_key, buffer)
        new["tail"] = {"key": tail_key, "size": len(buffer)}
    return new


def _read_tail(storage: Storage, tail: dict[str, Any]) -> bytes:
    """The bytes of the tail the state names, which must be all there."""
    try:
        data = storage.get(tail["key"])
    except FileNotFoundError as exc:
        raise StorageUnavailable(f"the tail {tail['key']} is missing") from exc
    if len(data) != int(tail["size"]):
        raise StorageUnavailable(
            f"the tail {tail['key']} has {len(data)} bytes, not {tail['size']}"
        )
    return data


def finish(storage: Storage, upload_id: str, key: str, state: ResumableState, size: int) -> None:
    """Make a complete upload's bytes the object under `key`; harmless when run twice."""
    if state.get("stored"):
        return
    parts_id = _parts_id(storage, upload_id, state)
    if parts_id is None:
        raise StorageUnavailable(f"the bytes of upload {upload_id} are missing")
    storage.complete_parts(key, parts_id, list(state.get("parts", [])), size)


def release(storage: Storage, old: ResumableState, new: ResumableState) -> None:
    """Remove the tail `old` named that `new` no longer needs (once `new` is recorded)."""
    tail = old.get("tail")
    if tail and tail != new.get("tail"):
        try:
            storage.remove(tail["key"])
        except StorageUnavailable as exc:  # a leftover `storage check --fix` removes
            log.warning("could not remove the tail %s: %s", tail["key"], exc)


def discard(storage: Storage, upload_id: str, key: str, state: ResumableState) -> None:
    """Remove every piece of an unfinished upload: its parts and every tail; harmless when
    run twice."""
    parts_id = _parts_id(storage, upload_id, state)
    if parts_id:
        storage.abort_parts(key, parts_id)
    # Every tail, not only the state's: a PATCH that failed may have stored one.
    tails = [obj.key for obj in storage.objects_under(f"{RESUMABLE_DIR}/{upload_id}")]
    for tail_key in tails:
        storage.remove(tail_key)


def pieces(storage: Storage, upload_id: str, key: str, state: ResumableState) -> set[str]:
    """The keys `pending_uploads` lists for this upload's pieces."""
    found = set()
    parts_id = _parts_id(storage, upload_id, state)
    if parts_id:
        found.add(storage.parts_piece(key, parts_id))
    if state.get("tail"):
        found.add(str(state["tail"]["key"]))
    return found
