"""The container and PaaS entry points: the Procfile, the Dockerfile, the container entry
point, the health check and .env.example do what they claim."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from app.settings import Settings
from tests.support import ROOT, VENV_BIN
from tests.support.database import fresh_database
from tests.support.deployment import SUPERVISORD_CONF, process_env
from tests.support.processes import RedisServer, free_port, reap
from tests.support.waiting import wait_for


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
        reap(*runs.values())

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
        if web is not None:
            reap(web)
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
            reap(*starts)
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
    """.env.example names every setting app/settings.py reads, each under a comment."""
    names = set(Settings.model_fields)
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= names
    lines = (ROOT / ".env.example").read_text().splitlines()
    setting = re.compile(r"#?[A-Z0-9_]+=")
    for name in sorted(names):
        at = [i for i, line in enumerate(lines) if re.match(rf"#?{name}=", line)]
        assert at, f"{name} is missing from .env.example"
        # A comment explains each setting, or a group of settings listed together.
        above = at[0] - 1
        while above >= 0 and setting.match(lines[above]):
            above -= 1
        assert above >= 0 and lines[above].startswith("# "), f"{name} has no comment"


def test_entry_point_says_what_to_do_when_the_data_folder_is_not_writable(
    tmp_path: Path,
) -> None:
    """A folder the container's user cannot write (a root-owned host directory on /data):
    the entry point stops before anything else and says how to fix it."""
    # Outside pytest's own folders, which only their owner may enter.
    with tempfile.TemporaryDirectory() as outside:
        Path(outside).chmod(0o755)
        start, data = start_on_unwritable_data(Path(outside), tmp_path)
    assert start.returncode == 1
    assert "started" not in start.stdout
    error = start.stderr
    assert f"error: {data} is not writable by this container's user (uid " in error
    assert "the SQLite database" in error
    assert "chown -R" in error and "HOST_DIR:/data:U" in error
    assert "Permission denied" not in error


def start_on_unwritable_data(
    base: Path, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the entry point as a user who cannot write base/data; the run and the folder."""
    data = base / "data"
    data.mkdir()
    data.chmod(0o755)  # its owner's alone, as a host directory made by root
    env = {
        **process_env(tmp_path, f"sqlite:///{data / 'coffer.db'}", "redis://127.0.0.1:1/0", 1),
        "UPLOAD_FOLDER": str(data / "uploads"),
        # As in the image: the instance folder is the container's own, and writable.
        "INSTANCE_PATH": str(base / "instance"),
    }
    (base / "instance").mkdir(mode=0o777)
    (base / "instance").chmod(0o777)
    command = [str(ROOT / "deploy" / "docker-entrypoint.sh"), "echo", "started"]
    if os.getuid() == 0:
        # The image's user: not root, so the folder's mode applies to it.
        command = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", *command]
    else:
        data.chmod(0o555)
    start = subprocess.run(command, cwd=base, env=env, capture_output=True, text=True, timeout=60)
    return start, data
