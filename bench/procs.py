"""The processes a bench run starts and stops: Redis, a database, Coffer, the floor, py-spy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import psutil
from sqlalchemy.engine import URL, make_url

from tests.support import ROOT
from tests.support import VENV_BIN as BIN
from tests.support.database import scratch_database
from tests.support.processes import free_port, stop_process

from .client import LOOPBACK, BenchError, Client


def wait_until(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Call `check()` until it is true; BenchError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{what} within {timeout:.0f} s")
        time.sleep(interval)


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A database URL for one run: a SQLite file, or a PostgreSQL database made and dropped.

    PostgreSQL's server is the one DATABASE_URL names; its own database is never touched.
    """
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'coffer.db'}"
        return
    configured = os.environ.get("DATABASE_URL", "").strip()
    if not configured:
        raise BenchError("the PostgreSQL run needs DATABASE_URL (a server to create a db on)")
    server = driver_url(configured)
    if server.host not in {LOOPBACK, "localhost", None}:
        raise BenchError(f"DATABASE_URL must name a server on {LOOPBACK}, not {server.host}")
    with scratch_database(server, "coffer_bench") as url:
        yield url


def driver_url(url: str) -> URL:
    """The URL with the psycopg 3 driver named for PostgreSQL, as Coffer's config does."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Coffer:
    """Coffer started as `make run` starts it: migrations, then supervisord with
    deploy/supervisord.conf running `manage.py serve` and WORKERS=1 `manage.py worker`."""

    def __init__(self, directory: Path, env: dict[str, str], port: int) -> None:
        self.directory = directory
        self.env = env
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "coffer.log"
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Migrate, start supervisord and wait until /readyz answers 200."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed in stop()
        try:
            subprocess.run(
                [sys.executable, "manage.py", "db", "upgrade"],
                cwd=ROOT,
                env=self.env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=True,
            )
        except subprocess.SubprocessError as exc:
            raise BenchError(f"migrations failed ({exc}); see {self.log_path}") from None
        self.process = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", "deploy/supervisord.conf"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        probe = Client(self.port, timeout=5)
        try:
            wait_until(
                lambda: (
                    self.process.poll() is None  # type: ignore[union-attr]
                    and probe.request("GET", "/readyz").status == 200
                ),
                60,
                f"Coffer did not become ready (see {self.log_path})",
                interval=0.2,
            )
        finally:
            probe.close()
        wait_until(lambda: len(self._children()) >= 2, 30, "supervisord did not start both")

    def _children(self) -> dict[str, int]:
        """The pids of the web process and the worker under supervisord."""
        found: dict[str, int] = {}
        if self.process is None:
            return found
        for child in psutil.Process(self.process.pid).children():
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "manage.py serve" in command:
                found["web"] = child.pid
            elif "manage.py worker" in command:
                found["worker"] = child.pid
        return found

    @property
    def web_pid(self) -> int:
        """The waitress process's pid."""
        return self._children()["web"]

    @property
    def worker_pid(self) -> int:
        """The RQ worker's pid."""
        return self._children()["worker"]

    def stop(self) -> None:
        """Stop supervisord, which stops the web process and the worker."""
        if self.process is None:
            return
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            children = []
        stop_process(self.process, timeout=120)
        self.process = None
        # supervisord puts each program in a process group of its own: should it have been
        # killed before stopping them, they are ended here, by pid.
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


class Floor:
    """`bench.floor` under waitress on a free port."""

    def __init__(self, directory: Path, threads: int, max_request_body_size: int) -> None:
        self.directory = directory
        self.port = free_port()
        self.threads = threads
        self.max_request_body_size = max_request_body_size
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start the floor and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.directory.parent / "floor.log", "ab")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.floor", "--port", str(self.port)]
            + ["--threads", str(self.threads)]
            + ["--max-request-body-size", str(self.max_request_body_size)]
            + ["--directory", str(self.directory)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        probe = Client(self.port, timeout=5)
        try:
            wait_until(
                lambda: probe.request("GET", "/healthz").status == 200,
                30,
                "the floor did not answer",
            )
        finally:
            probe.close()

    @property
    def pid(self) -> int:
        """The floor's pid."""
        assert self.process is not None
        return self.process.pid

    def clear(self) -> None:
        """Remove the files the floor wrote."""
        for path in self.directory.glob("floor-*"):
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the floor."""
        stop_process(self.process, timeout=30)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class PeakRSS:
    """Samples a process's resident set every few milliseconds while in a `with` block."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Profiler:
    """Optional py-spy sampling of Coffer's processes during each scenario (`--profile`)."""

    def __init__(self, directory: Path | None, rate: int = 100) -> None:
        self.directory = directory
        self.rate = rate
        self.binary = shutil.which("py-spy") or str(BIN / "py-spy")
        if directory is not None:
            if not Path(self.binary).exists():
                raise BenchError("--profile needs py-spy: pip install py-spy into the venv")
            directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def record(self, label: str, pids: dict[str, int]) -> Iterator[None]:
        """Record raw (collapsed) stacks of each pid, idle threads and children included."""
        if self.directory is None:
            yield
            return
        recorders: list[subprocess.Popen[bytes]] = []
        try:
            for name, pid in pids.items():
                output = self.directory / f"{label}-{name}.txt"
                recorders.append(
                    subprocess.Popen(
                        [self.binary, "record", "--pid", str(pid), "--rate", str(self.rate)]
                        + ["--format", "raw", "--output", str(output), "--idle"]
                        + ["--subprocesses", "--nonblocking"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
            time.sleep(1.0)  # py-spy takes a moment to attach
            yield
        finally:
            for recorder in recorders:
                # SIGINT makes py-spy write its output and exit.
                if recorder.poll() is None:
                    recorder.send_signal(signal.SIGINT)
            for recorder in recorders:
                try:
                    recorder.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(recorder.pid, signal.SIGKILL)
                    recorder.wait(timeout=10)
