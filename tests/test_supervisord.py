"""supervisord runs Coffer for real: register, upload, validate and download through it;
crashed programs come back; SIGTERM stops it gracefully, with nothing lost."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from typing import Any

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from sqlalchemy.engine import make_url

from app.broker import QUEUE_NAME
from app.services.queue import job_id
from tests.support.database import validation_blocked
from tests.support.deployment import PASSWORD, Client, Deployment, supervisor
from tests.support.metrics import scrape_url, value
from tests.support.processes import command_line, process_table, processes_with
from tests.support.waiting import wait_for

MiB = 1024 * 1024


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
        # /metrics adds up every process of the host, and the numbers of the processes
        # just killed stay counted: the upload the old web process took, the job a worker ran.
        numbers = scrape_url(deployment.base_url)
        assert value(numbers, "coffer_uploads_accepted_total", via="multipart") == 1
        assert value(numbers, "coffer_validation_jobs_total", verdict="ready") == 1
        assert value(numbers, "coffer_download_bytes_sent_total") == len(data)
        assert value(numbers, "coffer_queue_jobs") == 0

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
            # Named now: supervisord answers no XML-RPC call once it is stopping.
            names = sup.program_names()

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

    # supervisord says nothing critical at start: its socket asks for a password. As root,
    # started by hand without `make run`'s --user (tests/test_processes.py), it still says
    # it runs as root; the container runs as coffer.
    critical = [line for line in output.splitlines() if " CRIT " in line]
    if os.getuid() == 0:
        critical = [line for line in critical if "Supervisor is running as root" not in line]
    assert critical == []

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
        # A new start counts from zero: only the jobs of this run.
        numbers = scrape_url(deployment.base_url)
        assert value(numbers, "coffer_validation_jobs_total", verdict="ready") == len(waiting)
        assert value(numbers, "coffer_uploads_accepted_total", via="multipart") == 0
        status, _, body = user.request("GET", f"/api/files/{file_in_hand}/download")
        assert status == 200 and body == backlog[file_in_hand]
        sup.terminate()
        assert sup.process is not None and sup.process.wait(timeout=120) == 0
        assert not processes_with(sup.marker)
