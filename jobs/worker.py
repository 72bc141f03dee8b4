"""The worker entry point: app context, a periodic sweep for lost jobs, then RQ's loop."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.utils import now
from rq.worker.base import BaseWorker

from app import metrics
from app.broker import get_redis, worker_queues
from app.extensions import db
from app.files.sweep import sweep_if_due
from app.libc import libc
from jobs.webhooks import RetryLines

log = logging.getLogger(__name__)


class QuietBookkeeping:
    """Worker bookkeeping without the writes that repeat what Redis already holds.

    Between two small jobs RQ refreshes the worker's registration four times (for a
    key that lives for minutes), asks whether workers are suspended, and writes "idle"
    twice: more than half of its round trips per job. Refreshing and asking at most
    once a second, and writing a state only when it changes, keeps the registration,
    its TTL, `rq suspend` and what `rq info` shows just as true. Heartbeats that carry
    a job's own timeout always go out.
    """

    HEARTBEAT_EVERY = timedelta(seconds=1)
    # RQ's "result is kept for N seconds" line after every job.
    log_result_lifespan = False
    # RQ's own wait between attempts to reach Redis while dequeueing doubles up to this
    # (RQ's default is a minute): work resumes within seconds of Redis coming back.
    max_connection_wait_time = 5.0
    # How long a stopping worker waits for RQ's scheduler process before killing it, and
    # for the whole of RQ's teardown before exiting without it.
    SCHEDULER_STOP_SECONDS = 3.0
    TEARDOWN_SECONDS = 5.0
    last_heartbeat: Any
    scheduler: Any
    _state: str
    _suspension_checked: float = float("-inf")

    def check_for_suspension(self, burst: bool) -> None:
        """Honour `rq suspend`, asking Redis at most once a second."""
        if time.monotonic() - self._suspension_checked < self.HEARTBEAT_EVERY.total_seconds():
            return
        super().check_for_suspension(burst)  # type: ignore[misc]
        self._suspension_checked = time.monotonic()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Refresh the registration, unless a plain refresh went out under a second ago."""
        if (
            timeout is None
            and pipeline is None
            and self.last_heartbeat is not None
            and now() - self.last_heartbeat < self.HEARTBEAT_EVERY
        ):
            return
        super().heartbeat(timeout, pipeline)  # type: ignore[misc]

    def stop_scheduler(self) -> None:
        """Stop RQ's scheduler process, waiting SCHEDULER_STOP_SECONDS at most.

        On its way out the scheduler releases its locks in Redis. With Redis gone (its
        container removed, as `podman-compose down` does) each attempt waits out name
        lookups and redis-py's retries, 20-40 s in all, and RQ waits for it without a
        bound. The locks expire by themselves within a minute, so it is killed instead.
        """
        process = self.scheduler._process if self.scheduler else None
        if process is None or not process.pid:
            return
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
        process.join(self.SCHEDULER_STOP_SECONDS)
        if process.is_alive():
            log.warning(
                "RQ's scheduler did not stop within %.0f s: killed", self.SCHEDULER_STOP_SECONDS
            )
            process.kill()
            process.join()

    def teardown(self) -> None:
        """RQ's teardown (stop the scheduler, record the worker's exit in Redis), given
        TEARDOWN_SECONDS at most: it takes milliseconds while Redis answers.

        With Redis gone (its container removed, as `podman-compose down` does) every call
        waits out name lookups and redis-py's retries, 20-40 s in all. The registration
        of a worker that could not record its exit expires by itself, so the worker exits
        without waiting longer.
        """
        parent = super().teardown  # type: ignore[misc]
        failures: list[BaseException] = []

        def tear_down() -> None:
            try:
                parent()
            except BaseException as exc:  # noqa: BLE001 - raised again in the worker's thread
                failures.append(exc)

        # A thread of its own: a name lookup cannot be interrupted, only left behind.
        thread = threading.Thread(target=tear_down, name="rq-teardown", daemon=True)
        thread.start()
        thread.join(self.TEARDOWN_SECONDS)
        if thread.is_alive():
            log.warning(
                "RQ's teardown did not end within %.0f s (Redis unreachable): exiting without it",
                self.TEARDOWN_SECONDS,
            )
            return
        if failures:
            raise failures[0]

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Record the worker's state when it changes."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)  # type: ignore[misc]


class PerJobLines(logging.Filter):
    """Leaves out RQ's INFO lines for each job (taken, completed, OK), which repeat the
    job's own "started" and "ended" at a cost the worker feels (docs/PERFORMANCE.md).

    Matched by RQ's message templates: a template RQ changes shows again, nothing worse.
    RQ's other lines (start, suspension, warm shutdown, warnings, errors) all stay.
    """

    TEMPLATES = frozenset(
        {
            "Worker %s: %s: %s",
            "Worker %s: %s: %s (%s)",
            "Successfully completed job %s in %ss on worker %s",
            "Successfully completed %s job in %ss on worker %s",
        }
    )

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a per-job INFO line."""
        return not (record.levelno == logging.INFO and record.msg in self.TEMPLATES)


def quiet_rq_job_lines() -> None:
    """Put PerJobLines and the webhooks' RetryLines on RQ's worker logger, once."""
    rq_log = logging.getLogger("rq.worker")
    for line_filter in (PerJobLines, RetryLines):
        if not any(isinstance(existing, line_filter) for existing in rq_log.filters):
            rq_log.addFilter(line_filter())


class InProcessWorker(QuietBookkeeping, SimpleWorker):
    """Runs each job in the worker process itself."""


class ForkingWorker(QuietBookkeeping, Worker):
    """Runs each job in a forked child process."""

    def execute_job(self, job: Any, queue: Any) -> None:
        """Run the job in a work horse; then fold the ended horse's metric files into the
        archive, so a horse per job leaves no file behind (app/metrics/)."""
        try:
            super().execute_job(job, queue)
        finally:
            try:
                metrics.absorb_ended_processes()
            except OSError as exc:  # the next scrape tries again
                log.warning("could not fold the work horse's metrics: %s", exc)


# prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """In a forked child: take SIGTERM when the worker that forked it dies.

    RQ's scheduler runs in a child process; without this, a worker SIGKILLed alone (an
    OOM kill, `kill -9`) leaves its scheduler running with nobody to stop it. Linux only:
    elsewhere supervisord's killasgroup is the only cover.
    """
    library = libc()
    if library is None:
        return
    library.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def stop_was_requested(worker: BaseWorker) -> bool:
    """Whether RQ's loop ended because a signal asked it to (not because Redis went away)."""
    return bool(
        getattr(worker, "_stop_requested", False)
        or getattr(worker, "_shutdown_requested_date", None) is not None
    )


class StopWaiting(Exception):
    """SIGTERM or SIGINT while the worker waits for Redis to come back."""


def stop_waiting(signum: int, frame: object) -> None:
    """Signal handler while Redis is away: end the wait, wherever the worker is in it."""
    raise StopWaiting


# Waits between attempts to reach Redis again: doubling from one second, at most 5 s.
RECONNECT_FIRST_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 5.0


class Sweeper(threading.Thread):
    """Every SWEEP_SECONDS, queue again the files whose job Redis lost.

    A thread of its own, so it runs while the worker waits on an empty queue too. The
    sweep takes a lock in Redis first, so across all workers and hosts one sweep runs
    per interval; the job's own guards make a file queued twice harmless.
    """

    def __init__(self, app: Flask, connection: Redis, name: str) -> None:
        super().__init__(name="coffer-sweeper", daemon=True)
        self.app = app
        self.connection = connection
        self.owner = name
        self.interval = float(app.config["SWEEP_SECONDS"])
        self.stopping = threading.Event()

    def run(self) -> None:
        """Sweep, then wait an interval, until the worker stops.

        The first sweep runs whatever the lock says: a worker that starts after a crash
        queues the dead worker's job again at once.
        """
        first = True
        while not self.stopping.is_set():
            with self.app.app_context():
                try:
                    sweep_if_due(self.connection, self.owner, force=first)
                    first = False
                except Exception as exc:  # noqa: BLE001 - the next interval tries again
                    log.warning("sweep for lost jobs failed (will try again): %s", exc)
                finally:
                    db.session.remove()
            self.stopping.wait(self.interval)


def run(app: Flask, *, burst: bool = False, fork: bool = False, name: str | None = None) -> bool:
    """Run one RQ worker on the validation and webhook queues inside an app context.

    By default jobs run in the worker process itself: a fork per job costs about seven
    times the job's own CPU (each child re-imports libmagic and reconnects). A crash still
    loses nothing: supervisord restarts the worker and the sweep requeues the job of a
    worker that died. `fork` runs each job in a child process instead.

    Redis going away does not end the worker: RQ's loop gives up on a lost connection,
    so the worker waits (1 s, doubling up to 5 s), then starts a new loop; the
    sweep then queues whatever Redis lost meanwhile. SIGTERM or SIGINT while Redis is
    away ends the worker at once.
    """
    worker_class = ForkingWorker if fork else InProcessWorker
    worker_pid = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(worker_pid))
    quiet_rq_job_lines()
    with app.app_context():
        connection = get_redis()
        # Jobs open their own database connections; none may be shared across fork.
        db.session.remove()
        db.engine.dispose()
        sweeper: Sweeper | None = None
        wait = RECONNECT_FIRST_SECONDS
        worked = False
        worker: BaseWorker | None = None
        try:
            while True:
                try:
                    connection.ping()
                    if burst:
                        sweep_if_due(connection, name or "burst", force=True)
                        db.session.remove()
                    worker = worker_class(
                        worker_queues(connection),
                        connection=connection,
                        name=name,
                        # How often the forking worker refreshes a running job's heartbeat;
                        # the sweep's JOB_STALE_SECONDS is measured against it for remote
                        # workers.
                        job_monitoring_interval=app.config["JOB_HEARTBEAT_SECONDS"],
                        log_job_description=False,
                    )
                    if sweeper is None and not burst:
                        sweeper = Sweeper(app, connection, worker.name)
                        sweeper.start()
                    worked = (
                        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
                        or worked
                    )
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    if worker is not None and stop_was_requested(worker):
                        # Asked to stop while Redis is away: RQ's loop ended, then failed
                        # to record its exit. The signal is spent, so waiting for another
                        # would hold the stop until SIGKILL.
                        log.warning("stopping with Redis unreachable (%s)", exc)
                        break
                    log.error("Redis is unreachable (%s); trying again in %.0f s", exc, wait)
                else:
                    if burst or stop_was_requested(worker):
                        break
                    # RQ's loop ended without being asked to: it lost Redis mid-way.
                    log.error("the worker loop ended unexpectedly; starting again in %.0f s", wait)
                # RQ's signal handlers need Redis. While waiting, a stop request ends the
                # wait at once, also in the middle of a ping that waits out name lookups
                # and retries (Redis's container gone): the handler raises.
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, stop_waiting)
                time.sleep(wait)
                wait = min(wait * 2, RECONNECT_MAX_SECONDS)
                try:
                    connection.ping()
                    wait = RECONNECT_FIRST_SECONDS
                except RedisError:
                    pass
        except (StopWaiting, StopRequested):
            # StopRequested: RQ's own handler, still in place just after its loop ended.
            log.warning("stopping while Redis is unreachable")
        if sweeper is not None:
            sweeper.stopping.set()
        return worked
