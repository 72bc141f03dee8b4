"""Fixtures: a private Redis, a private database, the app, clients, a real worker and a
deployment in a temporary folder. Shared code lives in tests/support."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from redis import Redis
from sqlalchemy import text

os.environ["APP_ENV"] = "testing"

from app import create_app
from app.broker import worker_queues
from app.extensions import db as _db
from tests.support.browser import CHROMIUM, ConsoleErrors, Site, new_context, served
from tests.support.client import Auth
from tests.support.config import app_config
from tests.support.database import fresh_database, migrated_app
from tests.support.dav import Member, member
from tests.support.deployment import Deployment, process_env
from tests.support.live import LiveServer
from tests.support.processes import RedisServer, free_port
from tests.support.s3 import SeaweedFS
from tests.support.storage import STORAGE_BACKEND, check_storage_consistent

TABLES = (
    "dav_properties",
    "webhook_deliveries",
    "webhooks",
    "share_links",
    "resumable_uploads",
    "files",
    "folders",
    "invites",
    "password_resets",
    "api_tokens",
    "users",
    "organizations",
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The suite's own Redis, never the machine's shared one."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server only this test uses (and may stop); it keeps nothing on disk."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """The run's S3 server (SeaweedFS), started the first time a test needs one."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_bucket(s3_server: SeaweedFS) -> str:
    """One bucket on the run's S3 server for the tests that bring their own S3 settings
    (each under a prefix of its own): SeaweedFS gives every bucket volumes of its own."""
    run_bucket = os.environ.get("S3_BUCKET") if STORAGE_BACKEND == "s3" else None
    return run_bucket or s3_server.new_bucket("coffer-tests")


@pytest.fixture(scope="session", autouse=True)
def storage_environment(request: pytest.FixtureRequest) -> Iterator[None]:
    """On an s3 run, a bucket on the run's S3 server for every app, named in the
    environment (credentials too, as boto3 reads them); nothing on a local run."""
    if STORAGE_BACKEND != "s3":
        yield
        return
    server: SeaweedFS = request.getfixturevalue("s3_server")
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


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this run only: a SQLite file, or a PostgreSQL database it creates."""
    with fresh_database(tmp_path_factory.mktemp("db"), "coffer_test") as url:
        yield url


@pytest.fixture(scope="session")
def migrated_database(database_url: str, redis_server: RedisServer, tmp_path_factory) -> str:
    """The run's database with every migration applied, once."""
    migrated_app(database_url, redis_server.url, tmp_path_factory.mktemp("instance"))
    return database_url


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
            InProcessWorker(worker_queues(redis), connection=redis).work(
                burst=True, with_scheduler=False, logging_level="WARNING"
            )

    return run


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for a module's browser tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def site(app: Flask, tmp_path: Path) -> Iterator[Site]:
    """The test's app over HTTP, with a worker process beside it."""
    with served(app, tmp_path) as running:
        yield running


@pytest.fixture
def errors() -> Iterator[ConsoleErrors]:
    """The test's console errors: there must be none on any page."""
    seen = ConsoleErrors()
    yield seen
    assert seen.seen == []


@pytest.fixture
def context(browser: Browser, errors: ConsoleErrors) -> Iterator[BrowserContext]:
    """A fresh browser profile."""
    profile = new_context(browser, errors)
    yield profile
    profile.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab of that profile."""
    return context.new_page()


@pytest.fixture
def server(app: Flask) -> Iterator[LiveServer]:
    """The app served by waitress on a free port."""
    live = LiveServer(app)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def acme(auth: Auth) -> Member:
    """Acme's admin, with a write and a read token (WebDAV's user)."""
    return member(auth)
