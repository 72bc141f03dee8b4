"""The SHA-256 of a resumable upload's bytes as they arrive: kept in the upload's row between
requests, and computed beside the request's own reads and writes.

The stored state is `rehashes`' serialized SHA-256 (RustCrypto's, stable and documented by
its tests here), so every row written before reads as it did. Within a PATCH the bytes are
hashed on a thread of their own by OpenSSL's SHA-256, which lets go of the GIL while it
hashes: the request's thread reads and writes the next chunk meanwhile, and the hash no
longer adds its time to the PATCH (docs/PERFORMANCE.md). No library offers both a state
that can be stored and a hash that lets go of the GIL: `rehashes` holds the GIL, hashlib's
state cannot be read out. So the state moves between the two by hand: OpenSSL's
`SHA256_CTX` is a public struct of <openssl/sha.h>, and a self-check at the first use falls
back to `rehashes` on this thread wherever the two do not agree or libcrypto is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import queue
import struct
import threading
from types import TracebackType
from typing import Protocol

from rehashes import PySha256

log = logging.getLogger(__name__)

# rehashes' state: the eight words (little-endian), the 64-byte blocks hashed (u64), the
# bytes pending in the block buffer (one byte) and the buffer's first 63 bytes.
STATE = struct.Struct("<8IQB63s")
# OpenSSL's SHA256_CTX: the eight words, the bit count's low and high words, the block
# buffer, the bytes pending in it and the digest's length (native byte order).
CONTEXT = struct.Struct("=8III64sII")
BLOCK = 64
# Chunks waiting for the hashing thread at most: bounds the memory a PATCH holds.
QUEUE_CHUNKS = 4


def initial_state() -> bytes:
    """The state of a hash of no bytes."""
    return bytes(PySha256().serialize())


def hex_digest(state: bytes) -> str:
    """The hex SHA-256 of every byte hashed into the state."""
    return str(PySha256.deserialize(state).finalize())


def _to_context(state: bytes) -> bytes:
    """The SHA256_CTX that continues from a rehashes state."""
    *words, blocks, pending, buffered = STATE.unpack(state)
    bits = blocks * BLOCK * 8 + pending * 8
    data = buffered[:pending].ljust(BLOCK, b"\0")
    return CONTEXT.pack(*words, bits & 0xFFFFFFFF, bits >> 32, data, pending, 32)


def _from_context(context: bytes) -> bytes:
    """The rehashes state of a SHA256_CTX."""
    *words, low, high, data, pending, _ = CONTEXT.unpack(context)
    bits = (high << 32) | low
    blocks = (bits - pending * 8) // (BLOCK * 8)
    return STATE.pack(*words, blocks, pending, data[:pending].ljust(STATE.size - 41, b"\0"))


class _Engine(Protocol):
    def update(self, chunk: bytes) -> None: ...

    def state(self) -> bytes: ...


class _Inline:
    """rehashes on the caller's thread, each chunk once the next one is given: after the
    store's write of it, so that on local storage the disk writes it back meanwhile."""

    def __init__(self, state: bytes) -> None:
        self._hasher = PySha256.deserialize(state)
        self._pending: bytes | None = None

    def update(self, chunk: bytes) -> None:
        if self._pending is not None:
            self._hasher.update(self._pending)
        self._pending = chunk

    def state(self) -> bytes:
        if self._pending is not None:
            self._hasher.update(self._pending)
            self._pending = None
        return bytes(self._hasher.serialize())


class _OpenSSL:
    """OpenSSL's SHA256_Update on a SHA256_CTX (ctypes lets go of the GIL for the call)."""

    def __init__(self, library: ctypes.CDLL, state: bytes) -> None:
        self._update = library.SHA256_Update
        self._context = ctypes.create_string_buffer(_to_context(state), CONTEXT.size)

    def update(self, chunk: bytes) -> None:
        if self._update(self._context, chunk, len(chunk)) != 1:
            raise RuntimeError("SHA256_Update failed")

    def state(self) -> bytes:
        return _from_context(self._context.raw)


@functools.cache
def _libcrypto() -> ctypes.CDLL | None:
    """libcrypto when its SHA-256 continues rehashes' states exactly, else None."""
    name = ctypes.util.find_library("crypto")
    if name is None or CONTEXT.size != 112:
        return None
    try:
        library = ctypes.CDLL(name)
        update = library.SHA256_Update
    except (OSError, AttributeError):
        return None
    update.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
    update.restype = ctypes.c_int
    # Across a block's edge, from and back to a stored state twice: the digest must agree.
    sample = bytes(range(256)) * 3
    inline = _Inline(initial_state())
    inline.update(sample[:100])
    engine = _OpenSSL(library, inline.state())
    engine.update(sample[100:229])
    engine = _OpenSSL(library, engine.state())
    engine.update(sample[229:])
    if hex_digest(engine.state()) != hashlib.sha256(sample).hexdigest():
        log.warning("libcrypto's SHA-256 context is not the one expected: hashing inline")
        return None
    return library


class ArrivalHash:
    """One request's hashing, from the upload's stored state to the state to store next.

    `update` hands each chunk to the hashing thread (or hashes it now, without libcrypto);
    `state` waits for every chunk handed over. Use it as a context manager: leaving stops
    the thread, whatever happened.
    """

    def __init__(self, state: bytes, *, threaded: bool = True) -> None:
        library = _libcrypto() if threaded else None
        self._engine: _Engine = _Inline(state) if library is None else _OpenSSL(library, state)
        self._chunks: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if library is not None:
            self._chunks = queue.Queue(QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._run, name="arrival-hash", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._chunks is not None
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    self._engine.update(chunk)
                except BaseException as exc:  # noqa: BLE001 - raised again by state()
                    self._error = exc

    def update(self, chunk: bytes) -> None:
        """Add a chunk (hashed meanwhile on the hashing thread)."""
        if self._chunks is None:
            self._engine.update(chunk)
        else:
            self._chunks.put(bytes(chunk))

    def state(self) -> bytes:
        """The state after every chunk given: the next request continues from it."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self._engine.state()

    def _stop(self) -> None:
        if self._thread is not None and self._chunks is not None:
            self._chunks.put(None)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ArrivalHash:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop()
