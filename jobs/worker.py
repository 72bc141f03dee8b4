"""The worker entry point: app context, a sweep for lost jobs, then RQ's loop."""

from __future__ import annotations

import logging

from flask import Flask
from rq import SimpleWorker, Worker

from app.broker import get_queue, get_redis
from app.extensions import db

from .dispatch import requeue_stuck

log = logging.getLogger(__name__)


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
        worker_class = Worker if fork else SimpleWorker
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
