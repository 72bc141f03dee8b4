"""The C library, for the few Linux calls Python's os module lacks (mallopt, prctl,
sync_file_range)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)

# mallopt(3) parameter: allocations at least this large get pages of their own.
M_MMAP_THRESHOLD = -3
# The threshold Coffer's processes set (large_buffers_return_to_the_system).
MMAP_THRESHOLD = 1024 * 1024
# What a stream of bytes is read in: a buffer below MMAP_THRESHOLD comes from glibc's arenas,
# reused read after read. One at or above it is mapped for itself, faulted in page by page
# and unmapped again on every read: 1 MiB reads halved a zip's throughput and a resumable
# upload's (docs/PERFORMANCE.md).
READ_BUFFER = MMAP_THRESHOLD // 2


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library on Linux, loaded once; None elsewhere or when it cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


@functools.cache
def large_buffers_return_to_the_system() -> None:
    """Have glibc give each buffer of MMAP_THRESHOLD or more pages of its own, returned when
    it is freed (so streams read in READ_BUFFERs, below it).

    glibc raises its mmap threshold as large blocks are freed, after which the large buffers
    a web process handles (S3 parts, a zip's reads, upload bodies; MiBs each, from several
    request threads) come from arenas that never shrink, and the process keeps the memory of
    every burst it ever served. Fixing the threshold at 1 MiB keeps it small. Linux with
    glibc only; elsewhere a no-op.
    """
    mallopt = getattr(libc(), "mallopt", None)
    if mallopt is None:
        log.debug("mallopt is not available; large buffers use the default allocator")
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
