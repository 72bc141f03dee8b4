"""`manage.py` commands run against the real database: their effect, their output and
their exit status."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import select, update

from app.extensions import db
from app.models import File, Organization, User
from tests.support import ROOT
from tests.support.client import Auth
from tests.support.processes import RedisServer

ADMIN_COMMANDS = {
    "users": ("create", "deactivate", "activate"),
    "orgs": ("create", "set-quota", "invite"),
    "seed-data": (),
    "storage": ("check",),
    "jobs": ("status", "requeue-stuck", "requeue-failed"),
}
# The names before the commands were grouped, and what they now are.
OLD_NAMES = {
    "create-org": ("orgs", "create"),
    "create-user": ("users", "create"),
    "deactivate-user": ("users", "deactivate"),
    "activate-user": ("users", "activate"),
    "set-quota": ("orgs", "set-quota"),
    "invite": ("orgs", "invite"),
}
PASSWORD = "a long enough password"


def run(runner: FlaskCliRunner, *args: str, input: str | None = None) -> Result:
    """Invoke `manage.py ARGS` in-process against the test app."""
    return runner.invoke(args=list(args), input=input)


def organization(app: Flask, name: str) -> Organization | None:
    """An organization row by exact name, read fresh."""
    with app.app_context():
        org = db.session.scalars(select(Organization).where(Organization.name == name)).first()
        db.session.remove()
        return org


def login(client: FlaskClient, email: str, password: str) -> Any:
    """POST /api/auth/login."""
    return client.post("/api/auth/login", json={"email": email, "password": password})


def listing_prog(listing: Result) -> str:
    """The program name a `--help` listing's usage line shows."""
    return listing.output.split("Usage: ", 1)[1].split()[0]


def test_every_command_is_listed_and_has_help(runner: FlaskCliRunner) -> None:
    """`manage.py --help` lists the commands and each explains itself."""
    listing = run(runner, "--help")
    assert listing.exit_code == 0
    for name, subcommands in ADMIN_COMMANDS.items():
        assert f"  {name} " in listing.output
        group_help = run(runner, name, "--help")
        assert group_help.exit_code == 0, group_help.output
        assert "Usage:" in group_help.output
        for subcommand in subcommands:
            assert f"  {subcommand} " in group_help.output
            result = run(runner, name, subcommand, "--help")
            assert result.exit_code == 0, result.output
            assert f"Usage: {listing_prog(listing)} {name} {subcommand} " in result.output
    assert "--fix" in run(runner, "storage", "check", "--help").output
    for old_name in OLD_NAMES:
        assert f"  {old_name} " not in listing.output


def test_the_old_command_names_still_work(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient
) -> None:
    """The names from before the commands were grouped run the same commands, unlisted."""
    for old_name, new_name in OLD_NAMES.items():
        old_help = run(runner, old_name, "--help")
        assert old_help.exit_code == 0, old_help.output
        new_help = run(runner, *new_name, "--help").output
        assert old_help.output.split("\n", 1)[1] == new_help.split("\n", 1)[1]

    assert run(runner, "create-org", "Globex", "--quota-mb", "5").exit_code == 0
    assert organization(app, "Globex") is not None
    assert "quota of 'Globex' set to 7 MiB" in run(runner, "set-quota", "globex", "7").output
    created = run(
        runner,
        "create-user",
        "ann@globex.test",
        "--org",
        "Globex",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert created.exit_code == 0 and "created member ann@globex.test" in created.output
    assert "deactivated ann@globex.test" in run(runner, "deactivate-user", "ann@globex.test").output
    assert "activated ann@globex.test" in run(runner, "activate-user", "ann@globex.test").output
    assert login(client, "ann@globex.test", PASSWORD).status_code == 200
    assert run(runner, "invite", "Globex").stdout.strip()
    missing = run(runner, "create-org", "Globex")
    assert missing.exit_code == 1
    assert "Error: an organization named 'Globex' already exists" in missing.output


def test_create_org(app: Flask, runner: FlaskCliRunner) -> None:
    """orgs create makes an organization with the default or a given quota, once per name."""
    result = run(runner, "orgs", "create", "Globex")
    assert result.exit_code == 0, result.output
    globex = organization(app, "Globex")
    assert globex is not None and globex.storage_quota_mb == app.config["STORAGE_QUOTA_MB"]
    assert f"created organization {globex.id} 'Globex'" in result.output

    result = run(runner, "orgs", "create", "Initech", "--quota-mb", "5")
    assert result.exit_code == 0
    initech = organization(app, "Initech")
    assert initech is not None and initech.storage_quota_mb == 5
    assert "quota of 5 MiB" in result.output

    duplicate = run(runner, "orgs", "create", "GLOBEX")
    assert duplicate.exit_code == 1
    assert "Error: an organization named 'Globex' already exists" in duplicate.output
    assert organization(app, "GLOBEX") is None
    assert run(runner, "orgs", "create", "  ").exit_code == 1
    assert run(runner, "orgs", "create", "X" * 101).exit_code == 1
    assert run(runner, "orgs", "create", "Neg", "--quota-mb", "-1").exit_code == 2


def test_create_user_who_can_then_log_in(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient
) -> None:
    """users create adds a member or an admin whose password works at once."""
    assert run(runner, "orgs", "create", "Globex").exit_code == 0
    result = run(
        runner,
        "users",
        "create",
        "Alice@Globex.test",
        "--org",
        "globex",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "created member alice@globex.test" in result.output
    response = login(client, "alice@globex.test", PASSWORD)
    assert response.status_code == 200
    assert response.get_json()["role"] == "member"

    # Typed at the prompt, twice.
    result = run(
        runner,
        "users",
        "create",
        "boss@globex.test",
        "--org",
        "Globex",
        "--admin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin boss@globex.test" in result.output
    assert login(client, "boss@globex.test", PASSWORD).status_code == 200
    assert client.get("/api/org/users").status_code == 200  # admins only

    for args, stdin, message in (
        (["nobody@x.test", "--org", "Nowhere"], PASSWORD, "no organization named 'Nowhere'"),
        (["short@globex.test", "--org", "Globex"], "x7#kq9!mz", "at least 10 characters"),
        (["common@globex.test", "--org", "Globex"], "Password123", "most common passwords"),
        (["ALICE@globex.test", "--org", "Globex"], PASSWORD, "already exists"),
        (["not-an-email", "--org", "Globex"], PASSWORD, "not a valid address"),
        (["empty@globex.test", "--org", "Globex"], "", "no password on standard input"),
    ):
        result = run(runner, "users", "create", *args, "--password-stdin", input=stdin + "\n")
        assert result.exit_code == 1, result.output
        assert message in result.output
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(User)) == 2
        db.session.remove()


def test_deactivate_and_activate_user(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, auth: Auth
) -> None:
    """users deactivate cuts the user's session and tokens off at once; users activate
    lets them back in."""
    assert auth.register().status_code == 201
    token = auth.token()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me").status_code == 200

    result = run(runner, "users", "deactivate", "Admin@Acme.test")
    assert result.exit_code == 0, result.output
    assert "deactivated admin@acme.test" in result.output
    assert client.get("/api/auth/me").status_code == 401
    assert app.test_client().get("/api/files", headers=bearer).status_code == 401
    refused = login(app.test_client(), "admin@acme.test", auth.password)
    assert refused.status_code == 403 and refused.get_json()["code"] == "account_disabled"
    again = run(runner, "users", "deactivate", "admin@acme.test")
    assert again.exit_code == 0 and "already inactive" in again.output

    result = run(runner, "users", "activate", "admin@acme.test")
    assert result.exit_code == 0 and "activated admin@acme.test" in result.output
    assert login(app.test_client(), "admin@acme.test", auth.password).status_code == 200
    assert app.test_client().get("/api/files", headers=bearer).status_code == 200
    assert "already active" in run(runner, "users", "activate", "admin@acme.test").output

    for command in ("deactivate", "activate"):
        missing = run(runner, "users", command, "ghost@acme.test")
        assert missing.exit_code == 1
        assert "no user with email 'ghost@acme.test'" in missing.output


def test_activate_user_does_not_revive_sessions_from_before_deactivate_user(
    runner: FlaskCliRunner, client: FlaskClient, auth: Auth
) -> None:
    """A session open when users deactivate ran stays void after users activate; a new
    login works."""
    assert auth.register().status_code == 201
    assert client.get("/api/auth/me").status_code == 200
    # The session makes no request while the user is inactive, so nothing clears it then.
    assert run(runner, "users", "deactivate", "admin@acme.test").exit_code == 0
    assert run(runner, "users", "activate", "admin@acme.test").exit_code == 0
    assert client.get("/api/auth/me").status_code == 401
    assert auth.login().status_code == 200
    assert client.get("/api/auth/me").status_code == 200


def test_set_quota(runner: FlaskCliRunner, client: FlaskClient, auth: Auth) -> None:
    """orgs set-quota changes what uploads are allowed, and warns when usage is over it."""
    assert auth.register().status_code == 201
    assert auth.upload("notes.txt", b"some notes\n" * 200).status_code == 201

    result = run(runner, "orgs", "set-quota", "acme", "0")
    assert result.exit_code == 0, result.output
    assert "quota of 'Acme' set to 0 MiB" in result.output
    assert "usage is over the new quota" in result.output
    assert client.get("/api/org").get_json()["storage_quota_mb"] == 0
    assert auth.upload("more.txt", b"more\n").status_code == 507

    result = run(runner, "orgs", "set-quota", "Acme", "2")
    assert result.exit_code == 0 and "over the new quota" not in result.output
    assert auth.upload("more.txt", b"more\n").status_code == 201

    assert run(runner, "orgs", "set-quota", "Nowhere", "5").exit_code == 1
    assert run(runner, "orgs", "set-quota", "Acme", "lots").exit_code == 2


def test_invite_lets_someone_join(app: Flask, runner: FlaskCliRunner, auth: Auth) -> None:
    """orgs invite prints a single-use code that joins the organization as a member."""
    assert auth.register().status_code == 201
    result = run(runner, "orgs", "invite", "ACME")
    assert result.exit_code == 0, result.output
    code = result.stdout.strip()
    assert code and "\n" not in code  # the code alone on stdout, for scripts
    assert "single use, expires" in result.stderr

    newcomer = auth.another()
    joined = newcomer.register("new@acme.test", organization_name="Acme", invite_code=code)
    assert joined.status_code == 201
    assert joined.get_json()["role"] == "member"
    assert joined.get_json()["organization_id"] == auth.client.get("/api/org").get_json()["id"]
    reused = auth.another().register("late@acme.test", organization_name="Acme", invite_code=code)
    assert reused.status_code == 400 and reused.get_json()["code"] == "invite_invalid"

    missing = run(runner, "orgs", "invite", "Nowhere")
    assert missing.exit_code == 1 and "no organization named 'Nowhere'" in missing.output


def test_seed_data(app: Flask, runner: FlaskCliRunner, client: FlaskClient) -> None:
    """seed-data makes Acme Corp and an admin who can log in, once; never in production."""
    app.config["APP_ENV"] = "production"
    refused = run(runner, "seed-data")
    assert refused.exit_code == 1 and "development only" in refused.output
    assert organization(app, "Acme Corp") is None
    app.config["APP_ENV"] = "development"

    result = run(runner, "seed-data")
    assert result.exit_code == 0, result.output
    assert "created organization" in result.output and "'Acme Corp'" in result.output
    assert "created admin admin@acme.test" in result.output
    password = result.output.split("password: ", 1)[1].split()[0]
    response = login(client, "admin@acme.test", password)
    assert response.status_code == 200 and response.get_json()["role"] == "admin"
    assert client.get("/api/auth/me").get_json()["organization_name"] == "Acme Corp"

    again = run(runner, "seed-data")
    assert again.exit_code == 0
    assert "already exists" in again.output and "password:" not in again.output
    assert login(app.test_client(), "admin@acme.test", password).status_code == 200

    chosen = run(
        runner, "seed-data", "--email", "dev@acme.test", "--password-stdin", input=PASSWORD + "\n"
    )
    assert chosen.exit_code == 0 and "password:" not in chosen.output
    assert login(app.test_client(), "dev@acme.test", PASSWORD).status_code == 200


def age(path: Path, seconds: float) -> None:
    """Make a file look `seconds` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


# Ages are set on the files themselves (utime): a local-disk test.
@pytest.mark.parametrize("app_overrides", [{"STORAGE_BACKEND": "local"}], ids=["local"])
def test_storage_check_reports_and_fixes(
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    auth: Auth,
    worker: Callable[[], None],
) -> None:
    """storage check finds stray bytes, missing bytes, size mismatches and wrong counters;
    --fix repairs the safe ones and reports the rest."""
    assert auth.register().status_code == 201
    contents = {name: f"{name} content\n".encode() * 50 for name in ("a.txt", "b.txt", "c.txt")}
    ids = {name: auth.upload(name, data).get_json()["file_id"] for name, data in contents.items()}
    worker()
    clean = run(runner, "storage", "check")
    assert clean.exit_code == 0, clean.output
    assert "3 file(s) on disk, 3 row(s)" in clean.output
    assert "storage is consistent" in clean.output

    root = Path(app.config["UPLOAD_FOLDER"])
    org_id = client.get("/api/org").get_json()["id"]
    stray = root / str(org_id) / str(uuid.uuid4()) / "stray.bin"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a crash")
    age(stray, 3600)
    young = root / str(org_id) / str(uuid.uuid4()) / "young.bin"
    young.parent.mkdir(parents=True)
    young.write_bytes(b"an upload committing right now")
    temp = root / ".tmp" / "upload-abandoned.part"
    temp.parent.mkdir(exist_ok=True)
    temp.write_bytes(b"half an upload")
    age(temp, 7200)
    with app.app_context():
        paths = {
            name: root / db.session.get(File, file_id).file_path for name, file_id in ids.items()
        }
        db.session.execute(
            update(Organization).values(used_bytes=Organization.used_bytes + 12345, file_count=7)
        )
        db.session.commit()
        db.session.remove()
    paths["b.txt"].unlink()
    paths["c.txt"].write_bytes(b"truncated")

    report = run(runner, "storage", "check")
    assert report.exit_code == 1, report.output
    out = report.output
    assert (
        f"bytes on disk without a row: 1\n  {stray.relative_to(root)} (15 bytes, 60 min old)\n"
        in out
    )
    assert "abandoned upload temp files: 1\n  .tmp/upload-abandoned.part" in out
    assert "rows whose bytes are missing" in out and f"file {ids['b.txt']}" in out
    assert f"file {ids['c.txt']}: " in out
    assert f"has 9 bytes, the row says {len(contents['c.txt'])}" in out
    assert "file_count 7 (rows: 3)" in out
    assert f"left alone (an upload may be committing): 1\n  {young.relative_to(root)}" in out
    assert "5 problem(s) left; `storage check --fix` repairs what is safe" in out
    assert stray.exists() and temp.exists()  # a plain check changes nothing

    fixed = run(runner, "storage", "check", "--fix")
    assert fixed.exit_code == 1, fixed.output
    assert "15 bytes, 60 min old) - removed" in fixed.output
    assert "- recounted" in fixed.output
    assert "2 problem(s) left" in fixed.output  # the missing and the altered file
    assert not stray.exists() and not stray.parent.exists() and not temp.exists()
    assert young.exists()
    org = client.get("/api/org").get_json()
    # Usage counts what the rows say is stored, the missing file's bytes included.
    assert org["used_bytes"] == sum(len(data) for data in contents.values())
    assert org["file_count"] == 3

    # What is left takes an operator: delete the lost file, restore the altered one.
    assert client.delete(f"/api/files/{ids['b.txt']}", headers=auth.headers()).status_code == 204
    # In the trash it is still a row that claims its bytes: out of the trash, for good.
    assert client.delete(f"/api/trash/{ids['b.txt']}", headers=auth.headers()).status_code == 204
    paths["c.txt"].write_bytes(contents["c.txt"])
    age(young, 3600)  # no row ever came: after the grace period it is a stray too
    final = run(runner, "storage", "check", "--fix")
    assert final.exit_code == 0, final.output
    assert "young.bin (30 bytes, 60 min old) - removed" in final.output
    assert run(runner, "storage", "check").exit_code == 0


# A directory in place of the file's bytes is a local-disk fault: local storage here.
@pytest.mark.parametrize("app_overrides", [{"STORAGE_BACKEND": "local"}], ids=["local"])
def test_jobs_commands(
    app: Flask, runner: FlaskCliRunner, auth: Auth, redis: Redis, worker: Callable[[], None]
) -> None:
    """jobs status counts jobs and files; requeue-stuck recovers files whose job was
    lost; requeue-failed runs failed jobs again."""
    assert auth.register().status_code == 201
    first = auth.upload("one.txt", b"first\n").get_json()["file_id"]
    status = run(runner, "jobs", "status")
    assert status.exit_code == 0
    assert "queued: 1\n" in status.output and "files pending: 1\n" in status.output
    worker()
    status = run(runner, "jobs", "status").output
    assert "queued: 0\n" in status and "files ready: 1\n" in status

    # Redis loses its data (restarted without persistence): the job is gone.
    second = auth.upload("two.txt", b"second\n").get_json()["file_id"]
    redis.flushall()
    assert "requeued 1 stuck file(s)" in run(runner, "jobs", "requeue-stuck").output
    worker()
    assert "files ready: 2\n" in run(runner, "jobs", "status").output

    # A file that cannot be read fails every retry and lands in the failed registry.
    auth.login()
    data = b"third\n"
    third = auth.upload("three.txt", data).get_json()["file_id"]
    with app.app_context():
        stored = Path(app.config["UPLOAD_FOLDER"]) / db.session.get(File, third).file_path
        db.session.remove()
    stored.unlink()
    stored.mkdir()
    worker()
    status = run(runner, "jobs", "status").output
    assert "failed: 1\n" in status and "files failed: 1\n" in status
    stored.rmdir()
    stored.write_bytes(data)
    result = run(runner, "jobs", "requeue-failed")
    assert result.exit_code == 0 and "requeued 1 failed job(s)" in result.output
    worker()
    status = run(runner, "jobs", "status").output
    assert "failed: 0\n" in status and "files ready: 3\n" in status
    for file_id in (first, second, third):
        assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"


def test_manage_py_exit_status_and_stdin(
    app: Flask, migrated_database: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The real `python manage.py`: success on stdout, `Error: ...` on stderr with a
    non-zero status, the password read from a pipe."""
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "DATABASE_URL": migrated_database,
        "REDIS_URL": redis_server.url,
        "INSTANCE_PATH": str(tmp_path / "cli"),
        "UPLOAD_FOLDER": app.config["UPLOAD_FOLDER"],
        "BCRYPT_ROUNDS": "4",
    }

    def manage(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = manage("orgs", "create", "Umbrella", "--quota-mb", "50")
    assert created.returncode == 0, created.stderr
    assert "created organization" in created.stdout and created.stderr == ""
    org = organization(app, "Umbrella")
    assert org is not None and org.storage_quota_mb == 50

    user = manage(
        "users",
        "create",
        "ops@umbrella.test",
        "--org",
        "Umbrella",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert user.returncode == 0, user.stderr
    assert login(app.test_client(), "ops@umbrella.test", PASSWORD).status_code == 200

    failed = manage(
        "users", "create", "x@umbrella.test", "--org", "Nowhere", "--password-stdin", stdin=PASSWORD
    )
    assert failed.returncode == 1
    assert failed.stderr.strip() == "Error: no organization named 'Nowhere'"
    assert PASSWORD not in failed.stdout + failed.stderr


def test_manage_py_lists_coffer_commands_and_not_the_development_server(tmp_path: Path) -> None:
    """The real `python manage.py --help` lists Coffer's commands; Flask's development
    server (`run`) and Flask-Limiter's `limiter` are neither listed nor run."""
    env = {**os.environ, "APP_ENV": "testing", "INSTANCE_PATH": str(tmp_path / "cli")}

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listing = manage("--help")
    assert listing.returncode == 0, listing.stderr
    listed = {
        line.split()[0]
        for line in listing.stdout.split("Commands:", 1)[1].splitlines()
        if line.startswith("  ")
    }
    assert {"serve", "worker", "db", "shell", "routes", *ADMIN_COMMANDS} <= listed
    assert not listed & {"run", "limiter"}, listed
    for name in ("run", "limiter"):
        refused = manage(name)
        assert refused.returncode == 2
        assert f"No such command '{name}'" in refused.stderr
