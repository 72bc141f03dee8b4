"""A deployment in a temporary folder: its settings, a user of its API over real HTTP,
and supervisord running deploy/supervisord.conf."""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from supervisor.xmlrpc import SupervisorTransport

from tests.support import ROOT, VENV_BIN
from tests.support.client import multipart
from tests.support.processes import processes_with, reap
from tests.support.waiting import wait_for

SUPERVISORD_CONF = ROOT / "deploy" / "supervisord.conf"
PASSWORD = "deploy test password"


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
        # Production refuses to start without it.
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WORKERS": "2",
        "WEB_THREADS": "3",
        "BCRYPT_ROUNDS": "4",
        "JOB_RETRY_INTERVALS": "1",
    }


# ---- supervisord ---------------------------------------------------------------------


def socket_credentials() -> tuple[str, str]:
    """The user name and password of supervisord.conf's [supervisorctl] section."""
    conf = configparser.RawConfigParser()
    conf.read(SUPERVISORD_CONF)
    return conf.get("supervisorctl", "username"), conf.get("supervisorctl", "password")


class Supervisor:
    """`supervisord -c deploy/supervisord.conf` as a child of the test, its output kept;
    its state read through its XML-RPC interface on the conf's unix socket."""

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

    @property
    def socket(self) -> Path:
        """The [unix_http_server] socket of deploy/supervisord.conf."""
        return Path(self.deployment.env["INSTANCE_PATH"]) / "supervisor.sock"

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

    def process_info(self) -> list[dict[str, Any]]:
        """supervisor.getAllProcessInfo(): each program process's name, group, state, pid."""
        transport = SupervisorTransport(*socket_credentials(), f"unix://{self.socket}")
        with xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport) as proxy:
            return proxy.supervisor.getAllProcessInfo()  # type: ignore[no-any-return]

    def programs(self) -> dict[str, list[int]]:
        """The pids of supervisord's live children, by program: web and worker."""
        found: dict[str, list[int]] = {"web": [], "worker": []}
        for info in self.process_info():
            if info["pid"]:
                found[info["group"]].append(info["pid"])
        return found

    def program_names(self) -> dict[int, str]:
        """supervisord's name of each running program, by pid, as its log lines spell it."""
        return {
            info["pid"]: info["name"]
            for info in self.process_info()
            if info["statename"] == "RUNNING"
        }

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
            reap(run)

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
