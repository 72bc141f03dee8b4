"""The worker entry point: app context, a sweep for lost jobs, then RQ's loop."""

from __future__ import annotations

import logging

from flask import Flask
from rq import SimpleWorker, Worker

from app.broker import get_queue, get_redis
from app.extensions import db

from .dispatch import requeue_stuck

log = logging.getLogger(__name__)


def run(app: Flask, *, burst: bool = False, fork: bool = True, name: str | None = None) -> bool:
    """Run one RQ worker on the validation queue inside an app context.

    `fork` runs each job in a child process (a crash or a leak in one job cannot take
    the worker down); without it jobs run in this process.
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
            # How often a running job's heartbeat is refreshed; the sweep's
            # JOB_STALE_SECONDS is measured against it.
            job_monitoring_interval=app.config["JOB_HEARTBEAT_SECONDS"],
        )
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
