"""The multiprocess directory's life: chosen and started afresh, processes registered, the
files of ended processes absorbed into the archive (see app/metrics/__init__.py)."""

from __future__ import annotations

import fcntl
import glob
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import mark_process_dead

from . import definitions

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
LOCK_NAME = ".lock"
REGISTRATION_PREFIX = "process-"
# The kinds of file whose totals outlive their process (Coffer keeps no file-backed gauge).
ARCHIVED_KINDS = ("counter", "histogram")


@dataclass
class ProcessState:
    """Which directory this process counts into; `generation` moves with it."""

    directory: str | None = None
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_process = ProcessState()


def _identity() -> str:
    """This process's name in its files: the pid, so a fork (a work horse) gets files of
    its own; a suffix once the process has moved to another directory, which makes
    prometheus-client reopen every value's file there."""
    pid = os.getpid()
    return str(pid) if not _process.generation else f"{pid}-{_process.generation}"


# Replaces prometheus-client's choice at import (made from the environment before Coffer
# could set it): every Coffer metric is multiprocess, named by _identity. Made here, before
# any metric exists: definitions.start() runs only after this module is imported.
values.ValueClass = values.MultiProcessValue(_identity)


def metrics_directory(app: Flask) -> Path:
    """Where this app's processes keep their metric files."""
    return Path(app.config["INSTANCE_PATH"]) / "metrics"


def setup_process(directory: Path) -> None:
    """Count this process's metrics into `directory`, starting it afresh if no process
    using it lives; done before any metric is made or counted."""
    path = str(directory)
    with _process.lock:
        if _process.directory == path:
            return
        directory.mkdir(parents=True, exist_ok=True)
        with locked(directory):
            if not any(_registered_alive(directory)):
                _empty(directory)
            _register(directory)
        os.environ[ENV_VAR] = path
        if _process.directory is not None:
            _process.generation += 1
        _process.directory = path
        definitions.start()


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the directory across processes (flock on its lock file)."""
    with open(directory / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    """A process's start time since boot (Linux's /proc), None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name, which may itself hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registered_alive(directory: Path) -> Iterator[int]:
    """The pids of registered processes still running, each the very process that
    registered (its start time matches), not another that got its pid since."""
    for entry in directory.glob(f"{REGISTRATION_PREFIX}*"):
        try:
            pid = int(entry.name[len(REGISTRATION_PREFIX) :])
            recorded = entry.read_text().strip()
        except (ValueError, OSError):
            continue
        if _alive(pid) and (not recorded or recorded == (_start_time(pid) or recorded)):
            yield pid


def _register(directory: Path) -> None:
    pid = os.getpid()
    (directory / f"{REGISTRATION_PREFIX}{pid}").write_text(_start_time(pid) or "")


def _empty(directory: Path) -> None:
    """Remove every metric file and registration: the deployment starts from zero."""
    for entry in directory.iterdir():
        if entry.name != LOCK_NAME and entry.is_file():
            entry.unlink(missing_ok=True)


def _file_pid(path: str) -> int | None:
    """The pid in a metric file's name (`counter_123.db`, `counter_123-2.db`); None for
    the archive."""
    identity = os.path.basename(path)[: -len(".db")].rpartition("_")[2]
    try:
        return int(identity.partition("-")[0])
    except ValueError:
        return None


def absorb_ended_processes(directory: Path | None = None) -> None:
    """Add the totals of processes that ended into the archive and remove their files,
    so the directory stays one file set per live process (see app/metrics/__init__.py)."""
    target = directory or (Path(_process.directory) if _process.directory else None)
    if target is None or not target.is_dir():
        return
    with locked(target):
        absorb_locked(target)


def absorb_locked(directory: Path) -> None:
    """absorb_ended_processes, with the directory's lock already held (a scrape holds it)."""
    ended: dict[str, list[str]] = {}
    pids: set[int] = set()
    for path in glob.glob(os.path.join(directory, "*.db")):
        pid = _file_pid(path)
        if pid is None or _alive(pid):
            continue
        pids.add(pid)
        ended.setdefault(os.path.basename(path).partition("_")[0], []).append(path)
    for kind, paths in ended.items():
        if kind in ARCHIVED_KINDS:
            _archive(directory, kind, paths)
    for pid in pids:
        mark_process_dead(pid, str(directory))  # its live gauges, should any appear
    for entry in directory.glob(f"{REGISTRATION_PREFIX}*"):
        pid_text = entry.name[len(REGISTRATION_PREFIX) :]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            entry.unlink(missing_ok=True)


def _archive(directory: Path, kind: str, paths: list[str]) -> None:
    """Add these files' values into `<kind>_archive.db`, then remove them.

    The archive is written whole beside it and renamed over it, so a scrape (which holds
    the same lock) reads either the old archive and the files, or the new archive alone.
    prometheus-client has no merge-and-keep of its own; its MmapedDict is the file format.
    """
    archive = directory / f"{kind}_archive.db"
    totals: dict[str, float] = {}
    sources = ([str(archive)] if archive.exists() else []) + paths
    for source in sources:
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(source):
            totals[key] = totals.get(key, 0.0) + value
    staging = directory / f".{kind}_archive.new"
    staging.unlink(missing_ok=True)
    merged = MmapedDict(str(staging))
    try:
        for key, value in totals.items():
            merged.write_value(key, value, 0.0)
    finally:
        merged.close()
    os.replace(staging, archive)
    for path in paths:
        Path(path).unlink(missing_ok=True)
