"""CLI commands of `manage.py`, one group per concern."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

jobs_cli = AppGroup("jobs", help="Validation jobs: status and requeueing.")


@click.command("serve")
@with_appcontext
def serve() -> None:
    """Serve the API with waitress on $HOST:$PORT."""
    from waitress import serve as waitress_serve

    from .storage import MULTIPART_OVERHEAD

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    click.echo(f"Coffer serving on http://{config['HOST']}:{config['PORT']}", err=True)
    waitress_serve(
        app,
        host=config["HOST"],
        port=config["PORT"],
        threads=config["WEB_THREADS"],
        # A declared body over the upload limit is refused before it is read.
        max_request_body_size=config["MAX_FILE_SIZE"] + MULTIPART_OVERHEAD,
        ident="coffer",
        clear_untrusted_proxy_headers=True,
    )


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option("--no-fork", is_flag=True, help="Run jobs in the worker process itself.")
@with_appcontext
def worker(burst: bool, no_fork: bool) -> None:
    """Run an RQ worker that validates uploads."""
    from jobs.worker import run

    run(current_app._get_current_object(), burst=burst, fork=not no_fork)  # type: ignore[attr-defined]


@jobs_cli.command("status")
def jobs_status() -> None:
    """Queued, started and failed job counts, and files per status."""
    from jobs.dispatch import status

    result = status()
    click.echo(f"queued: {result.queued}")
    click.echo(f"started: {result.started}")
    click.echo(f"failed: {result.failed}")
    for name, count in result.files.items():
        click.echo(f"files {name}: {count}")


@jobs_cli.command("requeue-stuck")
def jobs_requeue_stuck() -> None:
    """Queue again the pending or processing files that have no live job."""
    from jobs.dispatch import requeue_stuck

    requeued = requeue_stuck()
    click.echo(f"requeued {len(requeued)} stuck file(s)")


@jobs_cli.command("requeue-failed")
def jobs_requeue_failed() -> None:
    """Run again every job in RQ's failed registry."""
    from jobs.dispatch import requeue_failed

    count = requeue_failed()
    click.echo(f"requeued {count} failed job(s)")


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI."""
    app.cli.add_command(serve)
    app.cli.add_command(worker)
    app.cli.add_command(jobs_cli)
