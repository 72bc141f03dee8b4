"""Processes stop together: `make run`'s private Redis stops on Ctrl-C with the rest, and a
worker killed alone takes RQ's scheduler, its child, with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from flask import Flask

from tests.support import ROOT, VENV_BIN
from tests.support.pipeline import process_env
from tests.support.processes import command_line, free_port, managed, process_table, session_pids
from tests.support.waiting import wait_for


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    return [
        child
        for child, (parent, _group, state) in process_table().items()
        if parent == pid and state not in "ZX"
    ]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    entry = process_table().get(pid)
    return entry is not None and entry[2] not in "ZX"


def readiness(port: int) -> dict[str, object] | None:
    """GET /readyz's body, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            body: dict[str, object] = json.load(response)
            return body
    except OSError:
        return None


@pytest.mark.slow
def test_make_run_starts_a_private_redis_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """No Redis at REDIS_URL: supervisord runs one beside Coffer; SIGINT ends them all."""
    port, redis_port = free_port(), free_port()
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PORT": str(port),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'coffer.db'}",
        "BCRYPT_ROUNDS": "4",
    }
    log = open(tmp_path / "make-run.log", "wb")  # noqa: SIM115 - closed below
    run = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        ready = wait_for(
            lambda: (body := readiness(port)) is not None and body["status"] == "ready" and body,
            120,
            "make run to serve a ready Coffer",
            interval=0.5,
        )
        assert ready["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}
        everything = session_pids(run.pid)
        redis = [pid for pid in everything if "redis-server" in command_line(pid)]
        assert len(redis) == 1, [command_line(pid) for pid in everything]
        assert f":{redis_port}" in command_line(redis[0])

        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        # make itself is interrupted too, as at a terminal; supervisord inside it exits 0.
        assert run.wait(timeout=120) in (0, -signal.SIGINT, 2)
        wait_for(lambda: not any(alive(pid) for pid in everything), 30, "every process to stop")
        assert readiness(port) is None
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
        log.close()
    output = (tmp_path / "make-run.log").read_text(errors="replace")
    assert "supervisord starts a private one" in output
    # Nothing critical said at start, as root too (running as root is what make run means).
    assert [line for line in output.splitlines() if " CRIT " in line] == []


@pytest.mark.slow
def test_a_worker_killed_alone_takes_its_scheduler_with_it(app: Flask, tmp_path: Path) -> None:
    with managed(["worker"], process_env(app), tmp_path / "worker.log") as worker:
        scheduler = wait_for(
            lambda: children_of(worker.pid), 60, "RQ's scheduler to start as the worker's child"
        )[0]
        os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
        worker.popen.wait(timeout=30)
        wait_for(lambda: not alive(scheduler), 30, "the scheduler to exit with its worker")
        time.sleep(0.5)
        assert not alive(scheduler), worker.output()
