"""`manage.py jobs ...`: validation jobs, their counts and requeueing."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..files import sweep
from ..services import queue

group = AppGroup("jobs", help="Validation jobs: status and requeueing.")


@group.command("status")
def status() -> None:
    """Queued, started and failed job counts, and files per status."""
    result = queue.status()
    click.echo(f"queued: {result.queued}")
    click.echo(f"started: {result.started}")
    click.echo(f"failed: {result.failed}")
    for name, count in result.files.items():
        click.echo(f"files {name}: {count}")


@group.command("requeue-stuck")
def requeue_stuck() -> None:
    """Queue again the pending or processing files that have no live job."""
    requeued = sweep.requeue_stuck()
    click.echo(f"requeued {len(requeued)} stuck file(s)")


@group.command("requeue-failed")
def requeue_failed() -> None:
    """Run again every job in RQ's failed registry."""
    count = sweep.requeue_failed()
    click.echo(f"requeued {count} failed job(s)")
