"""The tus project's own Node server (@tus/server + @tus/file-store from npm), run beside Coffer
by the `resumable` scenario; installed once into .cache/npm like the browser tests' clients."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from tests.support import ROOT
from tests.support.processes import free_port, stop_process

from .client import Client
from .procs import wait_until

# Pinned here and nowhere else; the versions the figures were measured with.
PACKAGES = {"@tus/server": "2.4.5", "@tus/file-store": "2.1.1"}
SCRIPT = ROOT / "bench" / "tus_peer.mjs"
INSTALL_TIMEOUT = 600


class PeerUnavailable(Exception):
    """The peer cannot run on this machine (no node or npm); the message says why."""


def cache_dir() -> Path:
    """Where this set of versions is installed (tests/support/npm.py's layout and variable)."""
    pins = ",".join(f"{name}@{version}" for name, version in sorted(PACKAGES.items()))
    digest = hashlib.sha256(pins.encode()).hexdigest()[:12]
    base = Path(os.environ.get("COFFER_NPM_CACHE", ROOT / ".cache" / "npm"))
    return base / digest


def install() -> Path:
    """The node_modules folder holding PACKAGES, installed with npm the first time."""
    target = cache_dir()
    modules = target / "node_modules"
    if all((modules / name / "package.json").is_file() for name in PACKAGES):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("npm not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Installed beside the cache and moved into place whole, as tests/support/npm.py does:
    # an interrupted install leaves nothing a later run would take for finished.
    staging = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
            + ["--ignore-scripts", "--loglevel=error"]
            + [f"{name}@{version}" for name, version in PACKAGES.items()],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            # No registry in reach is like no node: Coffer's own rounds still run.
            print(done.stderr[-2000:], file=sys.stderr)
            raise PeerUnavailable(f"npm install failed (exit {done.returncode}, see stderr)")
        if target.exists():
            shutil.rmtree(target)  # an earlier install that lost a file
        try:
            staging.rename(target)
        except OSError:
            # Another run installed the same versions meanwhile: theirs is as good.
            if not (modules / "@tus" / "server" / "package.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return modules


class TusPeer:
    """bench/tus_peer.mjs under node on a free loopback port, storing into `directory`."""

    path = "/files"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.directory.parent / "tus-peer.log"

    def start(self) -> None:
        """Install the packages if need be, start node and wait until the server answers.

        PeerUnavailable when node or npm is missing or npm cannot install the packages.
        """
        node = shutil.which("node")
        if node is None:
            raise PeerUnavailable("node not found")
        modules = install()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - node writes to it until stop()
        self.process = subprocess.Popen(
            [node, str(SCRIPT), "--modules", str(modules), "--port", str(self.port)]
            + ["--directory", str(self.directory)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        probe = Client(self.port, timeout=5)
        try:
            # An OPTIONS request is tus's discovery: 204 with the server's Tus-Version.
            wait_until(
                lambda: (
                    self.process.poll() is None  # type: ignore[union-attr]
                    and probe.request("OPTIONS", self.path).status == 204
                ),
                30,
                f"the tus Node server did not answer (see {self.log_path})",
                interval=0.1,
            )
        finally:
            probe.close()

    @property
    def pid(self) -> int:
        """The node process's pid."""
        assert self.process is not None
        return self.process.pid

    def clear(self) -> None:
        """Remove every upload the server stored (its bytes and its .json metadata)."""
        for path in self.directory.iterdir():
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the server."""
        stop_process(self.process, timeout=30)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
