"""`manage.py db copy` (docs/DEPLOY.md §6): a deployment with rows in every table moves from
SQLite to PostgreSQL (and back) and the app on the new database answers as before."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app import create_app
from app.broker import worker_queues
from app.extensions import db as _db
from app.models import Folder, Organization
from app.services.database_copy import tables, target_url
from jobs.worker import InProcessWorker
from tests.support import ROOT
from tests.support.client import Auth, bearer, multipart
from tests.support.config import app_config
from tests.support.database import migrated_app, scratch_database
from tests.support.pipeline import process_env
from tests.support.processes import RedisServer
from tests.support.receiver import receiver
from tests.support.tus import TUS, create, patch

NOTES = b"minutes of the meeting\n" * 40
# The ready file's second version, which it answers with.
NEWER_NOTES = NOTES + b"and a second version\n"
MEMBER = "member@acme.test"
PARENT_FOLDER = "ffffffff-0000-4000-8000-000000000001"
CHILD_FOLDER = "00000000-0000-4000-8000-000000000002"


def postgresql_server() -> str:
    """The PostgreSQL server scratch databases are made on: the run's (DATABASE_URL) on a
    PostgreSQL run, otherwise the one .ci/run uses (CI_POSTGRES_URL)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql")):
        url = os.environ.get("CI_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    return target_url(url).render_as_string(hide_password=False)


@contextmanager
def database(kind: str, directory: Path, name: str) -> Iterator[str]:
    """An empty database of `kind`: a SQLite file, or a scratch PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    with scratch_database(make_url(postgresql_server()), f"coffer_{name}") as url:
        yield url


def as_operator_types(url: str) -> str:
    """The URL as DEPLOY.md has the operator type it (postgresql://, no driver)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql"):
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def app_on(url: str, redis_url: str, tmp_path: Path, s3_prefix: str | None = None) -> Flask:
    """An app on the database at `url`, with the test's one upload folder or S3 prefix."""
    extra: dict[str, Any] = {"WEBHOOK_ALLOW_PRIVATE": True}
    if s3_prefix is not None:
        extra["S3_PREFIX"] = s3_prefix
    return create_app(app_config(url, redis_url, tmp_path, **extra))


def work(app: Flask) -> None:
    """Run Coffer's jobs (validations, then the deliveries they cause) until none is left."""
    redis = app.extensions["redis"]
    with app.app_context():
        InProcessWorker(worker_queues(redis), connection=redis).work(
            burst=True, with_scheduler=False, logging_level="WARNING"
        )


def manage(app: Flask, *args: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` as an operator runs it, on the app's database and storage."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(app),
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Answers:
    """What a deployment answers, as its users see it."""

    token: str
    link_path: str
    upload_path: str
    files: Any
    ready: Any
    org: Any
    users: Any
    webhooks: Any
    deliveries: Any


def populate(app: Flask, hook_url: str) -> Answers:
    """Rows in every table through the API: two organizations, an admin and a member
    who joined by invite, an unused invite, an unused password reset link, a token, a ready
    file with two versions and a failed file, a share link, an upload-only link, a webhook
    with its deliveries, an unfinished resumable upload, a WebDAV dead property and the
    activity record of all that."""
    admin = Auth(app, app.test_client())
    assert admin.register().status_code == 201
    other = admin.another()
    assert other.register("admin@globex.test", "Globex").status_code == 201
    assert other.upload("globex.txt", b"globex's own\n").status_code == 201
    joining = admin.another()
    joined = joining.register(MEMBER, "Acme", invite_code=admin.invite())
    assert joined.status_code == 201, joined.get_json()
    admin.invite()  # left unused
    reset = admin.client.post(
        f"/api/org/users/{joined.get_json()['user_id']}/password-reset", headers=admin.headers()
    )
    assert reset.status_code == 201, reset.get_json()  # left unused
    token = admin.token("backup script")
    hook = admin.client.post(
        "/api/org/webhooks",
        json={"url": hook_url, "events": ["file.ready", "file.failed"]},
        headers=admin.headers(),
    )
    assert hook.status_code == 201, hook.get_json()
    ready = admin.upload("notes.txt", NOTES).get_json()["file_id"]
    assert joining.upload("holiday.png", b"not a picture\n").status_code == 201
    # A folder inside another whose id sorts first: the copy must still bring parents first.
    with app.app_context():
        organization_id = _db.session.scalar(
            select(Organization.id).where(Organization.name_key == "acme")
        )
        _db.session.add_all(
            [
                Folder(
                    id=PARENT_FOLDER,
                    organization_id=organization_id,
                    name="Plans",
                    name_key="plans",
                ),
                Folder(
                    id=CHILD_FOLDER,
                    organization_id=organization_id,
                    parent_id=PARENT_FOLDER,
                    name="2027",
                    name_key="2027",
                ),
            ]
        )
        _db.session.commit()
    # A dead property set over WebDAV on the folder.
    basic = base64.b64encode(f"admin@acme.test:{token}".encode()).decode()
    proppatch = app.test_client().open(
        "/dav/Plans/",
        method="PROPPATCH",
        headers={"Authorization": f"Basic {basic}"},
        data=b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:coffer-test">'
        b"<D:set><D:prop><Z:colour>green</Z:colour></D:prop></D:set></D:propertyupdate>",
    )
    assert proppatch.status_code == 207 and b"200 OK" in proppatch.data, proppatch.data
    work(app)
    work(app)
    # A second version of the ready file: the first becomes a row of file_versions.
    body, kind = multipart("notes.txt", NEWER_NOTES, "text/plain", {"on_conflict": "replace"})
    replaced = admin.client.post(
        "/api/files/upload", data=body, headers=admin.headers(), content_type=kind
    )
    assert (replaced.status_code, replaced.get_json()["version"]) == (201, 2)
    work(app)
    link = admin.client.post(f"/api/files/{ready}/links", json={}, headers=admin.headers())
    assert link.status_code == 201, link.get_json()
    asked = admin.client.post("/api/folders/root/requests", json={}, headers=admin.headers())
    assert asked.status_code == 201, asked.get_json()
    started = create(admin.client, {**TUS, **bearer(token)}, 10, "big.txt")
    assert started.status_code == 201, started.get_json()
    upload_path = started.headers["Location"]
    sent = patch(admin.client, {**TUS, **bearer(token)}, upload_path, 0, b"0123")
    assert sent.status_code == 204
    answers = answers_of(app, token, link.get_json()["url"].split("/s/")[1], upload_path)
    assert [d["outcome"] for d in answers.deliveries] == ["succeeded", "succeeded"]
    return answers


def answers_of(app: Flask, token: str, secret: str, upload_path: str) -> Answers:
    """Everything the deployment answers its admin (logged in afresh, with the password)."""
    admin = Auth(app, app.test_client())
    login = admin.login()
    assert login.status_code == 200, login.get_json()
    webhooks = admin.client.get("/api/org/webhooks").get_json()
    (webhook,) = webhooks["webhooks"]
    return Answers(
        token=token,
        link_path=f"/s/{secret}",
        upload_path=upload_path,
        files=admin.client.get("/api/files").get_json(),
        ready=admin.client.get("/api/files?status=ready").get_json(),
        org=admin.client.get("/api/org").get_json(),
        users=admin.client.get("/api/org/users").get_json(),
        webhooks=webhooks,
        deliveries=admin.client.get(f"/api/org/webhooks/{webhook['id']}/deliveries").get_json()[
            "deliveries"
        ],
    )


def row_counts(url: str) -> dict[str, int]:
    """Rows per table, read directly."""
    engine = create_engine(target_url(url))
    try:
        with engine.connect() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in tables()
            }
    finally:
        engine.dispose()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The run's Redis, emptied before and after (sessions, rate limits, queued jobs)."""
    client = Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.mark.parametrize(
    ("source_kind", "target_kind"), [("sqlite", "postgresql"), ("postgresql", "sqlite")]
)
def test_every_table_moves_and_the_app_answers_the_same_on_the_new_database(
    source_kind: str, target_kind: str, redis_url: str, tmp_path: Path
) -> None:
    with (
        database(source_kind, tmp_path, "source") as source_url,
        database(target_kind, tmp_path, "target") as target,
        receiver([204]) as hook,
    ):
        migrated_app(source_url, redis_url, tmp_path / "migrate-source")
        source = app_on(source_url, redis_url, tmp_path)
        before = populate(source, hook.url)
        counts = row_counts(source_url)
        assert all(counts.values()), f"a table without rows tests nothing: {counts}"
        assert set(counts) >= {"share_links", "webhooks", "webhook_deliveries"}

        migrated_app(target, redis_url, tmp_path / "migrate-target")
        copied = manage(source, "db", "copy", "--to", as_operator_types(target))
        assert copied.returncode == 0, copied.stderr
        assert "verified" in copied.stdout
        assert row_counts(target) == counts

        # Coffer restarted on the new database, with the same storage.
        moved = app_on(target, redis_url, tmp_path, source.config["S3_PREFIX"])
        after = answers_of(moved, before.token, before.link_path[3:], before.upload_path)
        assert after.files == before.files
        assert after.ready == before.ready and after.ready["total"] == 1
        assert after.org == before.org
        assert after.users == before.users
        assert after.webhooks == before.webhooks
        assert after.deliveries == before.deliveries

        http = moved.test_client()
        with http.get(before.link_path) as shared:
            assert shared.status_code == 200
            assert shared.get_data() == NEWER_NOTES
        me = http.get("/api/auth/me", headers=bearer(before.token))
        assert me.status_code == 200 and me.get_json()["email"] == "admin@acme.test"
        member = Auth(moved, moved.test_client())
        assert member.login(MEMBER).status_code == 200
        head = http.head(before.upload_path, headers={**TUS, **bearer(before.token)})
        assert head.status_code == 200 and head.headers["Upload-Offset"] == "4"

        # New rows get fresh ids: the sequences were moved past the copied ones.
        admin = Auth(moved, moved.test_client())
        assert admin.login().status_code == 200
        second = admin.client.post(
            "/api/org/webhooks",
            json={"url": hook.url, "events": ["file.deleted"]},
            headers=admin.headers(),
        )
        assert second.status_code == 201, second.get_json()
        assert second.get_json()["id"] > before.webhooks["webhooks"][0]["id"]
        file_id = before.ready["files"][0]["id"]
        with admin.client.get(f"/api/files/{file_id}/versions/1/download") as first:
            assert (first.status_code, first.get_data()) == (200, NOTES)
        another_link = admin.client.post(
            f"/api/files/{file_id}/links", json={}, headers=admin.headers()
        )
        assert another_link.status_code == 201, another_link.get_json()
        assert admin.token("second script")
        newcomer = Auth(moved, moved.test_client())
        assert newcomer.register("new@initech.test", "Initech").status_code == 201
        with moved.app_context():
            _db.engine.dispose()

        # A second run finds the target full and leaves it as it is.
        again = manage(source, "db", "copy", "--to", as_operator_types(target))
        assert again.returncode == 1
        assert "not empty" in again.stderr
        with source.app_context():
            _db.engine.dispose()


def test_a_target_that_is_not_migrated_is_refused_and_left_alone(
    redis_url: str, tmp_path: Path
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    migrated_app(source_url, redis_url, tmp_path / "migrate-source")
    source = app_on(source_url, redis_url, tmp_path)
    assert Auth(source, source.test_client()).register().status_code == 201
    target = tmp_path / "target.db"

    refused = manage(source, "db", "copy", "--to", f"sqlite:///{target}")

    assert refused.returncode == 1
    assert "not migrated" in refused.stderr and "db upgrade" in refused.stderr
    engine = create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM sqlite_master")).all() == []
    engine.dispose()


def test_a_table_the_models_do_not_know_is_refused_rather_than_left_behind(
    redis_url: str, tmp_path: Path
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    migrated_app(source_url, redis_url, tmp_path / "migrate-source")
    source = app_on(source_url, redis_url, tmp_path)
    engine = create_engine(source_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, what TEXT)"))
    engine.dispose()
    target = f"sqlite:///{tmp_path / 'target.db'}"
    migrated_app(target, redis_url, tmp_path / "migrate-target")

    refused = manage(source, "db", "copy", "--to", target)

    assert refused.returncode == 1
    assert "audit_log" in refused.stderr
    assert not any(row_counts(target).values())
