"""The worker entry point: app context, a sweep for lost jobs, then RQ's loop."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from flask import Flask
from rq import SimpleWorker, Worker
from rq.utils import now

from app.broker import get_queue, get_redis
from app.extensions import db
from app.services.queue import requeue_stuck

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
    last_heartbeat: Any
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

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Record the worker's state when it changes."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)  # type: ignore[misc]


class InProcessWorker(QuietBookkeeping, SimpleWorker):
    """Runs each job in the worker process itself."""


class ForkingWorker(QuietBookkeeping, Worker):
    """Runs each job in a forked child process."""


def run(app: Flask, *, burst: bool = False, fork: bool = False, name: str | None = None) -> bool:
    """Run one RQ worker on the validation queue inside an app context.

    By default jobs run in the worker process itself: a fork per job costs about seven
    times the job's own CPU (each child re-imports libmagic and reconnects). A crash still
    loses nothing: supervisord restarts the worker and its start-up sweep requeues the
    job of a worker that died. `fork` runs each job in a child process instead.
    """
    with app.app_context():
        connection = get_redis()
        requeue_stuck(connection)
        # Jobs open their own database connections; none may be shared across fork.
        db.session.remove()
        db.engine.dispose()
        worker_class = ForkingWorker if fork else InProcessWorker
        worker = worker_class(
            [get_queue(connection)],
            connection=connection,
            name=name,
            # How often the forking worker refreshes a running job's heartbeat; the
            # sweep's JOB_STALE_SECONDS is measured against it for remote workers.
            job_monitoring_interval=app.config["JOB_HEARTBEAT_SECONDS"],
            log_job_description=False,
        )
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
