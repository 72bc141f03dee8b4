"""The tus project's own Node server (@tus/server + @tus/file-store from npm), run beside Coffer
by the `resumable` scenario; installed once into .cache/npm like the browser tests' clients."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.support import ROOT
from tests.support.npm import NpmUnavailable, installed
from tests.support.processes import free_port, stop_process

from .client import Client
from .procs import wait_until

# Pinned here and nowhere else; the versions the figures were measured with.
PACKAGES = {"@tus/server": "2.4.5", "@tus/file-store": "2.1.1"}
SCRIPT = ROOT / "bench" / "tus_peer.mjs"


class PeerUnavailable(Exception):
    """The peer cannot run on this machine (no node or npm); the message says why."""


def install() -> Path:
    """The node_modules folder holding PACKAGES, installed with npm the first time (the
    browser tests' installer and cache); PeerUnavailable when npm is missing or fails."""
    try:
        return installed(PACKAGES, [f"{name}/package.json" for name in PACKAGES])
    except NpmUnavailable as exc:
        # No registry in reach is like no node: Coffer's own rounds still run.
        print(exc, file=sys.stderr)
        raise PeerUnavailable(str(exc).splitlines()[0]) from exc


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
