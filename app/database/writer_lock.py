"""Coffer's writers take turns on an OS file lock beside the SQLite database."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class WriterLock:
    """One writer at a time on a SQLite file across Coffer's processes, in turn.

    SQLite's busy handler polls, sleeping up to 100 ms between tries, so under a
    steady stream of writes a waiting process keeps missing its turn (the worker
    behind a busy web server waited out nearly half of each job). An OS lock on a file
    beside the database queues Coffer's writers instead and wakes the next one when it
    is released; BEGIN IMMEDIATE then finds the database free. Other programs writing
    the database still meet the busy timeout, and so does Coffer when the lock file
    cannot be opened (say, made by another user). Waiting has no deadline: a holder
    that dies releases the lock with its descriptor, and nothing done while holding it
    waits without bound (its statements meet the busy timeout).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd = -1
        self._unavailable = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock (re-entrant within a thread)."""
        with self._threads:
            if self._depth == 0 and self._open():
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd >= 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> bool:
        """Open the lock file once; False (SQLite's busy timeout alone) when it cannot be."""
        if self._fd < 0 and not self._unavailable:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                self._unavailable = True
                log.warning("writers wait on SQLite's busy timeout alone: %s", exc)
        return self._fd >= 0

    def forget(self) -> None:
        """Drop this process's copy of a parent's descriptor (the parent keeps its lock)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_writer_locks: dict[str, WriterLock] = {}
_writer_locks_guard = threading.Lock()


def writer_lock(database: str) -> WriterLock:
    """This process's writer lock for a SQLite database file."""
    lock = _writer_locks.get(database)
    if lock is None:
        with _writer_locks_guard:
            lock = _writer_locks.setdefault(database, WriterLock(f"{database}.writer-lock"))
    return lock


def _writer_locks_after_fork() -> None:
    # A forked child (RQ's work horse) takes its own locks: a lock held through an
    # inherited descriptor would be the parent's, and unlocking it would free the parent's.
    global _writer_locks_guard
    for lock in _writer_locks.values():
        lock.forget()
    _writer_locks.clear()
    _writer_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_writer_locks_after_fork)
