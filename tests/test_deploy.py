"""Deployment: supervisord runs Coffer for real and stops it gracefully; the Procfile, the
Dockerfile, the container entry point, the health check and the smoke script do what
they claim."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.broker import QUEUE_NAME
from app.services.queue import job_id
from tests.support import ROOT
from tests.support.database import fresh_database, validation_blocked
from tests.support.processes import RedisServer, free_port

VENV_BIN = Path(sys.executable).parent
SUPERVISORD_CONF = ROOT / "deploy" / "supervisord.conf"
PASSWORD = "deploy test password"
MiB = 1024 * 1024


# ---- a deployment in a temporary folder ----------------------------------------------


@dataclass
class Deployment:
    """Everything one supervisord run needs: a database, a Redis, folders and settings."""

    directory: Path
    database_url: str
    redis_url: str
    port: int
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        """Where the web process listens."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def uploads(self) -> Path:
        """UPLOAD_FOLDER."""
        return Path(self.env["UPLOAD_FOLDER"])

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `python manage.py ARGS` with the deployment's settings."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def file_statuses(self) -> dict[str, str]:
        """Every file row's status, read from the database directly."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return dict(conn.execute(text("SELECT id, status FROM files")).all())
        finally:
            engine.dispose()


def process_env(directory: Path, database: str, redis_url: str, port: int) -> dict[str, str]:
    """A production-like environment for the deployment's processes, nothing inherited
    but PATH (the venv first, as `make run` does), HOME and the locale."""
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(directory)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        # Plain HTTP on loopback: the cookie must travel without TLS.
        "SESSION_COOKIE_SECURE": "false",
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(directory / "instance"),
        "UPLOAD_FOLDER": str(directory / "uploads"),
        "PORT": str(port),
        "WORKERS": "2",
        "WEB_THREADS": "3",
        "BCRYPT_ROUNDS": "4",
        "JOB_RETRY_INTERVALS": "1",
    }


@pytest.fixture
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A migrated database, a private Redis and empty folders, like a fresh install."""
    # A short folder: supervisord's unix socket path may not exceed 108 bytes.
    directory = tmp_path_factory.mktemp("dep")
    redis = RedisServer(directory / "redis")
    redis.start()
    try:
        with fresh_database(directory, "coffer_deploy") as database:
            port = free_port()
            deployment = Deployment(
                directory,
                database,
                redis.url,
                port,
                process_env(directory, database, redis.url, port),
            )
            (directory / "instance").mkdir()
            migrated = deployment.manage("db", "upgrade")
            assert migrated.returncode == 0, migrated.stderr
            yield deployment
    finally:
        redis.stop()


# ---- processes -----------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, int, str]]:
    """Every process on the machine: pid -> (parent pid, process group, state)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: the fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
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


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Supervisor:
    """`supervisord -c deploy/supervisord.conf` as a child of the test, its output kept."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.process: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader: threading.Thread | None = None

    @property
    def marker(self) -> str:
        """The environment entry every process of this deployment carries."""
        return f"INSTANCE_PATH={self.deployment.env['INSTANCE_PATH']}"

    def start(self) -> None:
        """Start supervisord and wait until the API is ready."""
        self.process = subprocess.Popen(
            [str(VENV_BIN / "supervisord"), "-c", str(SUPERVISORD_CONF)],
            cwd=ROOT,
            env=self.deployment.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()
        wait_for(self.ready, 90, f"/readyz to answer 200; output:\n{self.output()}", 0.25)

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            with self.changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.changed.notify_all()

    def ready(self) -> bool:
        """Whether GET /readyz answers 200."""
        try:
            with urllib.request.urlopen(f"{self.deployment.base_url}/readyz", timeout=5) as r:
                return r.status == 200
        except urllib.error.HTTPError as error:
            error.close()
            return False
        except OSError:
            return False

    def output(self) -> str:
        """Everything supervisord and its programs printed so far."""
        with self.changed:
            return "\n".join(self.lines)

    def lines_since(self, mark: int) -> list[str]:
        """The lines printed after line `mark` (a value of mark())."""
        with self.changed:
            return self.lines[mark:]

    def mark(self) -> int:
        """How many lines have been printed so far, for wait_for_lines(since=...)."""
        with self.changed:
            return len(self.lines)

    def wait_for_lines(
        self, pattern: str, count: int = 1, timeout: float = 60, since: int = 0
    ) -> list[str]:
        """Wait until `count` output lines (after line `since`) match the regex."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                matches = [line for line in self.lines[since:] if regex.search(line)]
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(self.lines[-40:])
                    raise AssertionError(f"no {count} line(s) matching {pattern!r}:\n{tail}")
                self.changed.wait(remaining)

    def programs(
        self, table: dict[int, tuple[int, int, str]] | None = None
    ) -> dict[str, list[int]]:
        """The pids of supervisord's children, by program: web and worker."""
        assert self.process is not None
        found: dict[str, list[int]] = {"web": [], "worker": []}
        for pid, (ppid, _pgid, state) in (table or process_table()).items():
            if ppid == self.process.pid and state not in "ZX":
                command = command_line(pid)
                for name, word in (("web", "manage.py serve"), ("worker", "manage.py worker")):
                    if word in command:
                        found[name].append(pid)
        return found

    def ctl_start(self, *args: str) -> subprocess.Popen[str]:
        """Start supervisorctl against this supervisord, without waiting for it."""
        return subprocess.Popen(
            [str(VENV_BIN / "supervisorctl"), "-c", str(SUPERVISORD_CONF), *args],
            cwd=ROOT,
            env=self.deployment.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def ctl(self, *args: str) -> str:
        """Run supervisorctl against this supervisord; returns its output."""
        run = self.ctl_start(*args)
        try:
            return run.communicate(timeout=120)[0]
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate(timeout=30)

    def terminate(self) -> None:
        """Send supervisord SIGTERM, as `docker stop` or systemd would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        """Kill whatever of this deployment still runs, and release the pipe."""
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=30)
            if self.reader is not None:
                self.reader.join(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()


@contextmanager
def supervisor(deployment: Deployment, **env: str) -> Iterator[Supervisor]:
    """A running supervisord for the deployment; killed (with every child) on the way out."""
    if env:
        deployment.env = {**deployment.env, **env}
    sup = Supervisor(deployment)
    try:
        sup.start()
        yield sup
    finally:
        sup.close()


# ---- an HTTP client ------------------------------------------------------------------


class Client:
    """A user of the API over real HTTP, with a cookie jar and the CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; returns status, headers and body, errors included."""
        all_headers = {"X-CSRF-Token": self.csrf, **(headers or {})}
        req = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=all_headers
        )
        try:
            with self.opener.open(req, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def json(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """A JSON request; returns status and decoded body."""
        body = None if payload is None else json.dumps(payload).encode()
        status, _, raw = self.request(method, path, body, {"Content-Type": "application/json"})
        return status, json.loads(raw) if raw else None

    def register(self, email: str, organization: str) -> dict[str, Any]:
        """Register and keep the CSRF token."""
        status, body = self.json(
            "POST",
            "/api/auth/register",
            {"email": email, "password": PASSWORD, "organization_name": organization},
        )
        assert status == 201, body
        self.csrf = body["csrf_token"]
        return body

    def upload(self, filename: str, data: bytes) -> dict[str, Any]:
        """Upload a file; returns the 201 body."""
        body, content_type = multipart(filename, data)
        status, _, raw = self.request(
            "POST", "/api/files/upload", body, {"Content-Type": content_type}
        )
        assert status == 201, raw[:500]
        return json.loads(raw)

    def wait_until(self, file_id: str, wanted: str, timeout: float = 90) -> dict[str, Any]:
        """Poll a file's details until it has the wanted status."""

        def reached() -> dict[str, Any] | None:
            status, body = self.json("GET", f"/api/files/{file_id}")
            assert status == 200, body
            assert body["status"] != "failed" or wanted == "failed", body
            return body if body["status"] == wanted else None

        return wait_for(reached, timeout, f"file {file_id} to be {wanted}", 0.2)


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with `data` as field `file`, and its content type."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


# ---- supervisord ---------------------------------------------------------------------


def jobs_in_hand(redis_url: str, worker_pids: list[int]) -> dict[int, str | None]:
    """Each registered worker process's STARTED job as RQ records it, None when idle."""
    connection = Redis.from_url(redis_url)
    try:
        hands: dict[int, str | None] = {}
        for worker in Worker.all(connection=connection):
            if worker.pid not in worker_pids:
                continue
            job = worker.get_current_job_id()
            if job is not None and Job.fetch(job, connection=connection).get_status() != (
                JobStatus.STARTED
            ):
                continue  # being set up or wound down: neither idle nor in hand
            hands[worker.pid] = job
        return hands
    finally:
        connection.close()


def queued_jobs(redis_url: str) -> int:
    """How many jobs wait in the validation queue."""
    connection = Redis.from_url(redis_url)
    try:
        return Queue(QUEUE_NAME, connection=connection).count
    finally:
        connection.close()


def program_names(sup: Supervisor) -> dict[int, str]:
    """supervisord's name of each running program, by pid, as its log lines spell it."""
    names = {}
    for line in sup.ctl("status").splitlines():
        found = re.match(r"(?:[^:\s]+:)?(\S+)\s+RUNNING\s+pid (\d+),", line)
        if found:
            names[int(found[2])] = found[1]
    return names


def app_log_lines(output: str) -> list[dict[str, Any]]:
    """The JSON lines the programs printed (supervisord's own lines are plain text)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_supervisord_serves_coffer_and_stops_gracefully(deployment: Deployment) -> None:
    """register → upload → ready → download through supervisord; crashed programs come
    back; on SIGTERM the job in hand finishes, nothing is lost and every process exits."""
    with supervisor(deployment) as sup:
        # WEB_THREADS reaches waitress through supervisord; WORKERS workers run.
        sup.wait_for_lines(
            rf"Coffer serving on http://127\.0\.0\.1:{deployment.port} with 3 threads"
        )
        programs = sup.programs()
        assert len(programs["web"]) == 1 and len(programs["worker"]) == 2

        user = Client(deployment.base_url)
        user.register("ops@deploy.test", "Deploy Org")
        data = b"region,total\n" + b"".join(b"north,%d\n" % i for i in range(5000))
        file_id = user.upload("totals.csv", data)["file_id"]
        details = user.wait_until(file_id, "ready")
        assert details["sha256"] == hashlib.sha256(data).hexdigest()
        status, headers, body = user.request("GET", f"/api/files/{file_id}/download")
        assert status == 200 and body == data
        assert headers["Content-Type"].startswith("text/csv")
        status, token = user.json("POST", "/api/tokens", {"name": "deploy"})
        assert status == 201

        # A crash of either program is followed by a restart.
        os.kill(programs["web"][0], signal.SIGKILL)
        # The worker with its process group: RQ's scheduler child would outlive it alone.
        os.killpg(programs["worker"][0], signal.SIGKILL)

        def restarted() -> bool:
            now = sup.programs()
            return (
                len(now["web"]) == 1
                and now["web"] != programs["web"]
                and len(now["worker"]) == 2
                and programs["worker"][0] not in now["worker"]
                and sup.ready()
            )

        wait_for(restarted, 90, "the killed programs to be restarted", 0.25)
        assert user.json("GET", "/api/auth/me")[0] == 200

        # A backlog, queued while the workers are stopped, gives them work at SIGTERM.
        assert "stopped" in sup.ctl("stop", "worker:*")
        backlog = {}
        for i in range(6):
            payload = os.urandom(64) * (24 * MiB // 64) + bytes([i])
            backlog[user.upload(f"backlog-{i}.bin", payload)["file_id"]] = payload
        # Jobs run in the worker process itself, so SIGTERM is sure to find one in hand
        # only if it cannot finish first: the first file's first status change waits at
        # a database lock the test holds. What else waits differs: SQLite's one write
        # lock holds every job, so each worker holds a backlog file and the rest stays
        # queued; PostgreSQL's row lock holds that file alone, so the other worker
        # validates the rest of the backlog and goes idle.
        file_in_hand = next(iter(backlog))
        sqlite = make_url(deployment.database_url).get_backend_name() == "sqlite"

        def settled() -> dict[int, str | None] | None:
            hands = jobs_in_hand(deployment.redis_url, sup.programs()["worker"])
            busy = [job for job in hands.values() if job]
            if len(hands) != len(programs["worker"]) or job_id(file_in_hand) not in busy:
                return None
            if sqlite:
                return hands if len(busy) == len(hands) else None
            others_ready = all(
                status == "ready"
                for fid, status in deployment.file_statuses().items()
                if fid in backlog and fid != file_in_hand
            )
            return hands if len(busy) == 1 and others_ready else None

        with validation_blocked(deployment.database_url, file_in_hand):
            # The watch starts with the workers, not once supervisorctl returns: on
            # SQLite the held jobs give up after the 30 s busy timeout.
            starting = sup.ctl_start("start", "worker:*")
            try:
                hands = wait_for(settled, 90, "the first backlog file's job to be in hand")
            finally:
                started = starting.communicate(timeout=120)[0]
            assert "started" in started
            busy = {pid: job for pid, job in hands.items() if job}
            idle = [pid for pid in hands if pid not in busy]
            held = {fid for fid in backlog if job_id(fid) in busy.values()}
            ready_before = {
                fid for fid, status in deployment.file_statuses().items() if status == "ready"
            }
            assert queued_jobs(deployment.redis_url) == len(set(backlog) - held - ready_before)
            # Named now: supervisord answers no supervisorctl once it is stopping.
            names = program_names(sup)

            assert sup.process is not None
            before_stop = sup.mark()
            sup.terminate()
            # The web program stops first; supervisord signals the workers right after.
            sup.wait_for_lines(r"stopped: web \(exit status 0\)", timeout=60, since=before_stop)
            after_web = sup.mark()
            # RQ's warm shutdown: an idle worker says so and exits at once. A busy one says
            # so and waits for its job, but only where a signal handler can run while the
            # job waits for the lock: psycopg's wait runs them; SQLite's busy wait holds
            # them until it returns, once the lock is gone.
            prompt = idle if sqlite else [*idle, *busy]
            for pid in prompt:
                sup.wait_for_lines(
                    rf"\[PID {pid}\]: warm shut down requested", timeout=60, since=before_stop
                )
            for pid in idle:
                sup.wait_for_lines(
                    rf"stopped: {names[pid]} \(exit status 0\)", timeout=60, since=before_stop
                )
            # supervisord names the programs it still waits for every 3 s: a report after
            # the workers were signalled, naming the busy ones alone, shows them holding
            # on to their jobs while it waits.
            waited_for = ", ".join(sorted(names[pid] for pid in busy))
            sup.wait_for_lines(
                rf"waiting for {re.escape(waited_for)} to die", timeout=30, since=after_web
            )
            for pid in busy:
                assert process_table().get(pid, (0, 0, "X"))[2] not in "ZX", "worker gone"
            assert sup.process.poll() is None
            statuses = deployment.file_statuses()
            assert {statuses[fid] for fid in held} == {"pending"}
        # The lock is gone: each busy worker finishes its job, then exits.
        assert sup.process.wait(timeout=120) == 0
        leftovers = processes_with(sup.marker)
        assert not leftovers, [command_line(pid) for pid in leftovers]
        stopping = "\n".join(sup.lines_since(before_stop))
        output = sup.output()

    # One SIGTERM each, one warm shutdown each (none pushed to RQ's cold shutdown), and
    # every program exits 0.
    for pid, name in names.items():
        assert f"stopped: {name} (exit status 0)" in stopping
        if name != "web":
            assert len(re.findall(rf"\[PID {pid}\]: warm shut down requested", stopping)) == 1
    assert "cold shut down" not in stopping
    statuses = deployment.file_statuses()
    assert {statuses[fid] for fid in held} == {"ready"}
    assert "processing" not in statuses.values()
    # Files not yet started wait in the queue for the next start: none is lost, and no
    # worker took another job after SIGTERM.
    waiting = {fid for fid, status in statuses.items() if status == "pending"}
    assert waiting == set(backlog) - held - ready_before
    assert queued_jobs(deployment.redis_url) == len(waiting)

    # Production logs: JSON lines, with the request fields, and no secret anywhere.
    lines = app_log_lines(output)
    access = [line for line in lines if line.get("logger") == "coffer.access"]
    assert access and all(
        {"request_id", "method", "path", "status", "duration_ms"} <= set(line) for line in access
    )
    for fid in held:
        assert any(line.get("file_id") == fid and "ended" in line["message"] for line in lines)
    for secret in (PASSWORD, token["token"], user.csrf, deployment.env["SECRET_KEY"]):
        assert secret not in output

    # The next start picks up the backlog where it stopped.
    with supervisor(deployment) as sup:
        for fid in backlog:
            user.wait_until(fid, "ready", timeout=120)
        status, _, body = user.request("GET", f"/api/files/{file_in_hand}/download")
        assert status == 200 and body == backlog[file_in_hand]
        sup.terminate()
        assert sup.process is not None and sup.process.wait(timeout=120) == 0
        assert not processes_with(sup.marker)


@pytest.mark.slow
def test_web_finishes_requests_in_hand_on_sigterm(deployment: Deployment) -> None:
    """An upload still being received when SIGTERM arrives completes; new connections
    are refused meanwhile, and everything exits."""
    with supervisor(deployment, WORKERS="1") as sup:
        user = Client(deployment.base_url)
        user.register("late@deploy.test", "Late Org")
        status, token = user.json("POST", "/api/tokens", {"name": "late"})
        assert status == 201
        data = b"a line of a late upload\n" * 40_000
        body, content_type = multipart("late.txt", data)
        head = (
            "POST /api/files/upload HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{deployment.port}\r\n"
            f"Authorization: Bearer {token['token']}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", deployment.port), timeout=60) as conn:
            conn.sendall(head + body[: len(body) // 2])
            time.sleep(0.5)
            sup.terminate()
            sup.wait_for_lines(r"stopping: new connections refused, finishing 1 request")

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", deployment.port), timeout=2).close()
                except ConnectionRefusedError:
                    return True
                return False

            wait_for(refused, 10, "new connections to be refused")
            conn.sendall(body[len(body) // 2 :])
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
        status_line, _, rest = response.partition(b"\r\n")
        assert status_line.split()[1] == b"201", response[:500]
        file_id = json.loads(rest.partition(b"\r\n\r\n")[2])["file_id"]
        assert sup.process is not None and sup.process.wait(timeout=120) == 0
        assert not processes_with(sup.marker)

    assert deployment.file_statuses()[file_id] in {"pending", "ready"}
    stored = list(deployment.uploads.glob(f"*/{file_id}/*"))
    assert len(stored) == 1 and stored[0].read_bytes() == data


@pytest.mark.slow
def test_smoke_script_passes_against_supervisord_and_fails_on_surprises(
    deployment: Deployment,
) -> None:
    """deploy/smoke.sh walks a healthy deployment; a missing worker or a dead URL makes
    it exit non-zero at the step that went wrong."""

    def smoke(base_url: str, timeout: str = "60") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "deploy" / "smoke.sh"), base_url],
            env={**os.environ, "SMOKE_TIMEOUT": timeout},
            capture_output=True,
            text=True,
            timeout=180,
        )

    with supervisor(deployment) as sup:
        passed = smoke(deployment.base_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        for step in ("register", "login", "upload", "wait for ready", "download", "logout"):
            assert f"ok   [{step}]" in passed.stdout
        assert "smoke test passed" in passed.stdout

        # Without workers nothing gets validated: the script says so and fails.
        assert "stopped" in sup.ctl("stop", "worker:*")
        stuck = smoke(deployment.base_url, timeout="3")
        assert stuck.returncode == 1
        assert "FAIL [wait for ready]" in stuck.stderr and "still pending" in stuck.stderr

    dead = smoke(f"http://127.0.0.1:{free_port()}")
    assert dead.returncode == 1 and "FAIL [health]" in dead.stderr
    usage = subprocess.run(
        ["bash", str(ROOT / "deploy" / "smoke.sh")], capture_output=True, text=True, timeout=30
    )
    assert usage.returncode == 2 and "usage" in usage.stderr


# ---- Procfile, Dockerfile, entry point, health check ---------------------------------


def procfile() -> dict[str, str]:
    """The Procfile's process types and their commands."""
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def dockerfile() -> dict[str, str]:
    """The Dockerfile's last value of each instruction, continuation lines joined."""
    instructions: dict[str, str] = {}
    text_ = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text_.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, value = line.strip().partition(" ")
            instructions[keyword.upper()] = value.strip()
    return instructions


def test_procfile_and_dockerfile_name_entry_points_that_exist(tmp_path: Path) -> None:
    """Every command the Procfile, the Dockerfile and supervisord.conf start exists."""
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "PORT": "8000"}
    commands = procfile()
    assert set(commands) == {"web", "worker", "release"}
    assert "$PORT" in commands["web"]
    program_commands = re.findall(r"^command=(.+)$", SUPERVISORD_CONF.read_text(), re.M)
    assert len(program_commands) == 2
    argvs = {}
    for command in {*commands.values(), *program_commands}:
        argv = shlex.split(command.replace("$PORT", "8000"))
        assert argv[:2] == ["python", "manage.py"], command
        argvs[command] = argv[2:]
    # `--help` exits 0 only if the command and every option given exist.
    runs = {
        command: subprocess.Popen(
            [sys.executable, "manage.py", *argv, "--help"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command, argv in argvs.items()
    }
    try:
        for command, run in runs.items():
            out, err = run.communicate(timeout=120)
            assert run.returncode == 0, f"{command}: {err}"
            assert "Usage:" in out
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.communicate(timeout=30)

    docker = dockerfile()
    cmd = json.loads(docker["CMD"])
    assert cmd[0] == "supervisord" and (VENV_BIN / "supervisord").exists()
    assert (ROOT / cmd[cmd.index("-c") + 1]) == SUPERVISORD_CONF
    entrypoint = ROOT / json.loads(docker["ENTRYPOINT"])[0]
    assert entrypoint.is_file() and os.access(entrypoint, os.X_OK)
    health = json.loads(docker["HEALTHCHECK"].partition("CMD")[2])
    assert health[0] == "python" and (ROOT / health[1]).is_file()
    assert docker["USER"] not in {"root", "0"}


@pytest.mark.slow
def test_procfile_web_honours_port_and_health_check_sees_it(tmp_path: Path) -> None:
    """The Procfile's release migrates a fresh database and its web command listens on
    $PORT; the container's health check passes against it and fails without it."""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    port = free_port()
    env = process_env(tmp_path, f"sqlite:///{tmp_path / 'coffer.db'}", redis.url, port)
    commands = procfile()
    web: subprocess.Popen[bytes] | None = None
    try:
        release = subprocess.run(
            ["sh", "-c", commands["release"]],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert release.returncode == 0, release.stderr
        web = subprocess.Popen(
            ["sh", "-c", f"exec {commands['web']}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def healthcheck() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "deploy/healthcheck.py"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )

        wait_for(lambda: healthcheck().returncode == 0, 90, "the health check to pass", 0.25)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
            assert json.load(response)["checks"] == {
                "database": "ok",
                "redis": "ok",
                "storage": "ok",
            }
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=60) == 0
        failing = healthcheck()
        assert failing.returncode == 1 and "unhealthy" in failing.stderr
    finally:
        if web is not None and web.poll() is None:
            web.kill()
            web.wait(timeout=30)
        redis.stop()


@pytest.mark.slow
def test_two_containers_starting_at_once_both_migrate_and_start(tmp_path: Path) -> None:
    """The container entry point, run twice at the same moment on one fresh database,
    migrates it once, and both go on to their command."""
    with fresh_database(tmp_path, "coffer_deploy") as database:
        env = {
            **process_env(tmp_path, database, "redis://127.0.0.1:1/0", free_port()),
            "UPLOAD_FOLDER": str(tmp_path / "data" / "uploads"),
        }
        starts = [
            subprocess.Popen(
                [str(ROOT / "deploy" / "docker-entrypoint.sh"), "echo", f"container {i} up"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        try:
            results = [start.communicate(timeout=180) for start in starts]
        finally:
            for start in starts:
                if start.poll() is None:
                    start.kill()
                    start.communicate(timeout=30)
        for i, (start, (out, err)) in enumerate(zip(starts, results, strict=True)):
            assert start.returncode == 0, err
            assert f"container {i} up" in out
        assert (tmp_path / "data" / "uploads").is_dir()
        engine = create_engine(database)
        try:
            with engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
                assert conn.execute(text("SELECT count(*) FROM files")).scalar() == 0
        finally:
            engine.dispose()
        head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
        assert versions == [(head,)]


def test_env_example_documents_every_setting() -> None:
    """.env.example names every variable app/config.py reads, each under a comment."""
    source = (ROOT / "app" / "config.py").read_text()
    names = set(
        re.findall(r'(?:env_bool|env_int_list|env_int|os\.environ\.get)\(\s*"([A-Z_]+)"', source)
    )
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= names
    lines = (ROOT / ".env.example").read_text().splitlines()
    setting = re.compile(r"#?[A-Z_]+=")
    for name in sorted(names):
        at = [i for i, line in enumerate(lines) if re.match(rf"#?{name}=", line)]
        assert at, f"{name} is missing from .env.example"
        # A comment explains each setting, or a group of settings listed together.
        above = at[0] - 1
        while above >= 0 and setting.match(lines[above]):
            above -= 1
        assert above >= 0 and lines[above].startswith("# "), f"{name} has no comment"
