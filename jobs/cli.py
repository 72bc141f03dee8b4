"""The worker's command, `manage.py worker`: it lives with the jobs it runs."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from .worker import run


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option(
    "--fork/--no-fork",
    default=False,
    show_default=True,
    help="Run each job in a child process (isolation, at several times the cost per job).",
)
@with_appcontext
def worker(burst: bool, fork: bool) -> None:
    """Run an RQ worker that validates uploads; SIGTERM lets the job in hand finish."""
    run(current_app._get_current_object(), burst=burst, fork=fork)  # type: ignore[attr-defined]
