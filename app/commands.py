"""CLI commands of `manage.py`: processes, jobs, administration and storage checks."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from .config import MiB
from .models import isoformat
from .services import admin, storage_check
from .services.errors import DomainError
from .services.files import fits_quota

log = logging.getLogger("coffer.server")

jobs_cli = AppGroup("jobs", help="Validation jobs: status and requeueing.")
storage_cli = AppGroup("storage", help="Uploaded bytes: consistency with the database.")

# How often the server loop looks for a stop request while idle.
POLL_SECONDS = 0.2


# ---- processes -----------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on.  [default: $HOST]")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port.  [default: $PORT]")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Request threads.  [default: $WEB_THREADS]",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="Seconds the requests in hand get to finish after SIGTERM.",
)
@with_appcontext
def serve(host: str | None, port: int | None, threads: int | None, shutdown_timeout: float) -> None:
    """Serve the API with waitress; SIGTERM stops accepting and finishes requests in hand."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    run_server(
        app,
        host=host or config["HOST"],
        port=port or config["PORT"],
        threads=threads or config["WEB_THREADS"],
        shutdown_timeout=shutdown_timeout,
    )


def requests_in_hand(server: Any) -> int:
    """Connections of a waitress server with a request being received, run or sent."""
    return sum(
        1
        for channel in list(server.active_channels.values())
        if channel.request is not None or channel.requests or channel.total_outbufs_len
    )


def run_server(app: Flask, *, host: str, port: int, threads: int, shutdown_timeout: float) -> None:
    """Run waitress until SIGTERM or SIGINT, then drain gracefully.

    waitress itself dies on SIGTERM mid-request, so the loop is driven here: on a stop
    request the listening socket closes (new connections are refused) while the
    connections in hand are served to the end, for at most `shutdown_timeout` seconds.
    """
    from waitress import wasyncore
    from waitress.server import create_server

    from .storage.uploads import upload_body_limit

    server: Any = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        # A declared body over the upload limit is refused before it is read.
        max_request_body_size=upload_body_limit(),
        ident="coffer",
        clear_untrusted_proxy_headers=True,
    )
    stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def turn() -> None:
        wasyncore.loop(
            timeout=POLL_SECONDS, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1
        )

    log.info(
        "Coffer serving on http://%s:%s with %d threads",
        server.effective_host,
        server.effective_port,
        threads,
    )
    try:
        while not stop.is_set():
            turn()
        log.info(
            "stopping: new connections refused, finishing %d request(s) in hand",
            requests_in_hand(server),
        )
        # The base class's close: the listening socket only, the wake-up trigger stays.
        wasyncore.dispatcher.close(server)
        deadline = time.monotonic() + shutdown_timeout
        while requests_in_hand(server) and time.monotonic() < deadline:
            turn()
        unfinished = requests_in_hand(server)
        if unfinished:
            log.warning("stopping with %d request(s) unfinished", unfinished)
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        wasyncore.close_all(server._map, ignore_all=True)
    log.info("stopped")


# ---- jobs ----------------------------------------------------------------------------


@jobs_cli.command("status")
def jobs_status() -> None:
    """Queued, started and failed job counts, and files per status."""
    from app.services.queue import status

    result = status()
    click.echo(f"queued: {result.queued}")
    click.echo(f"started: {result.started}")
    click.echo(f"failed: {result.failed}")
    for name, count in result.files.items():
        click.echo(f"files {name}: {count}")


@jobs_cli.command("requeue-stuck")
def jobs_requeue_stuck() -> None:
    """Queue again the pending or processing files that have no live job."""
    from app.services.queue import requeue_stuck

    requeued = requeue_stuck()
    click.echo(f"requeued {len(requeued)} stuck file(s)")


@jobs_cli.command("requeue-failed")
def jobs_requeue_failed() -> None:
    """Run again every job in RQ's failed registry."""
    from app.services.queue import requeue_failed

    count = requeue_failed()
    click.echo(f"requeued {count} failed job(s)")


# ---- administration ------------------------------------------------------------------


@contextmanager
def operator_errors() -> Iterator[None]:
    """Report an operator's error as `Error: ...` on stderr with exit status 1."""
    try:
        yield
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None


def read_password(from_stdin: bool) -> str:
    """The password from the first line of stdin, or typed twice at a hidden prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def megabytes(size: int) -> str:
    """A byte count in MB with one decimal."""
    return f"{size / MiB:.1f} MB"


@click.command("create-org")
@click.argument("name")
@click.option(
    "--quota-mb",
    type=click.IntRange(min=0),
    default=None,
    help="Storage quota in MB.  [default: $STORAGE_QUOTA_MB]",
)
@with_appcontext
def create_org(name: str, quota_mb: int | None) -> None:
    """Create the organization NAME."""
    with operator_errors():
        org = admin.create_organization(name, quota_mb)
    click.echo(
        f"created organization {org.id} {org.name!r} with a quota of {org.storage_quota_mb} MB"
    )


@click.command("create-user")
@click.argument("email")
@click.option("--org", "organization", required=True, help="Name of an existing organization.")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user an organization admin.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@with_appcontext
def create_user(email: str, organization: str, is_admin: bool, password_stdin: bool) -> None:
    """Create a user EMAIL in an organization; the password is prompted for."""
    password = read_password(password_stdin)
    with operator_errors():
        user = admin.create_user(email, password, organization, admin=is_admin)
    click.echo(f"created {user.role} {user.email} (user {user.id}) in {user.organization.name!r}")


@click.command("deactivate-user")
@click.argument("email")
@with_appcontext
def deactivate_user(email: str) -> None:
    """Disable EMAIL: logins are refused, sessions and API tokens stop working at once."""
    with operator_errors():
        user, changed = admin.set_user_active(email, False)
    if changed:
        click.echo(f"deactivated {user.email}; their sessions and API tokens no longer work")
    else:
        click.echo(f"{user.email} was already inactive")


@click.command("activate-user")
@click.argument("email")
@with_appcontext
def activate_user(email: str) -> None:
    """Enable EMAIL again."""
    with operator_errors():
        user, changed = admin.set_user_active(email, True)
    click.echo(f"activated {user.email}" if changed else f"{user.email} was already active")


@click.command("set-quota")
@click.argument("org")
@click.argument("mb", type=click.IntRange(min=0))
@with_appcontext
def set_quota(org: str, mb: int) -> None:
    """Set the storage quota of organization ORG to MB megabytes."""
    with operator_errors():
        organization = admin.set_quota(org, mb)
    click.echo(
        f"quota of {organization.name!r} set to {mb} MB ({megabytes(organization.used_bytes)} used)"
    )
    if not fits_quota(organization.used_bytes, mb):
        click.echo(
            "warning: usage is over the new quota; uploads get 507 until files are deleted",
            err=True,
        )


@click.command("invite")
@click.argument("org")
@with_appcontext
def invite(org: str) -> None:
    """Issue a single-use invite code to organization ORG (the code alone goes to stdout)."""
    with operator_errors():
        issued = admin.issue_invite(org)
    click.echo(
        f"invite to {org.strip()!r}, single use, expires {isoformat(issued.expires_at)}:", err=True
    )
    click.echo(issued.code)


@click.command("seed-data")
@click.option("--email", default=admin.SEED_ADMIN_EMAIL, show_default=True, help="Admin email.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the admin's password from stdin instead of generating one.",
)
@with_appcontext
def seed_data(email: str, password_stdin: bool) -> None:
    """Development only: the "Acme Corp" organization and an admin."""
    password = read_password(True) if password_stdin else None
    with operator_errors():
        result = admin.seed_data(email, password)
    org = result.organization
    if result.organization_created:
        click.echo(f"created organization {org.id} {org.name!r}")
    else:
        click.echo(f"organization {org.id} {org.name!r} already exists")
    if not result.admin_created:
        click.echo(f"admin {result.admin.email} already exists; password unchanged")
        return
    click.echo(f"created admin {result.admin.email} (user {result.admin.id})")
    if result.password is not None:
        click.echo(f"password: {result.password}")


# ---- storage -------------------------------------------------------------------------


def age(seconds: float) -> str:
    """A rough age: minutes under two hours, hours under two days, then days."""
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


@storage_cli.command("check")
@click.option("--fix", is_flag=True, help="Repair what is safe and report the rest.")
@with_appcontext
def storage_check_command(fix: bool) -> None:
    """Files on disk without rows, rows without files, and quota counters that disagree.

    --fix removes stray bytes and abandoned upload temp files (older than 15 minutes) and
    recounts quota counters; rows whose bytes are missing are only reported. Exits 1
    while problems remain.
    """
    report = storage_check.check(fix=fix)
    click.echo(
        f"checked {report.location}: {report.files_on_disk} file(s) on disk, "
        f"{report.rows} row(s) with stored bytes"
    )
    if not report.root_exists and report.rows:
        click.echo(f"{report.location} does not exist (is the volume mounted?)")

    def done(flag: bool, what: str) -> str:
        return f" - {what}" if flag else ""

    sections: list[tuple[str, list[str]]] = [
        (
            "bytes on disk without a row",
            [
                f"  {item.path} ({item.size} bytes, {age(item.age_seconds)} old)"
                + done(item.removed, "removed")
                for item in report.orphans
            ],
        ),
        (
            "abandoned upload temp files",
            [
                f"  {item.path} ({item.size} bytes, {age(item.age_seconds)} old)"
                + done(item.removed, "removed")
                for item in report.stale_temp
            ],
        ),
        (
            "rows whose bytes are missing (restore them from a backup, or delete the file)",
            [
                f"  file {item.file_id} of organization {item.organization_id}: {item.path}"
                for item in report.missing
            ],
        ),
        (
            "files whose size on disk differs from their row",
            [
                f"  file {item.file_id}: {item.path} has {item.on_disk} bytes, "
                f"the row says {item.recorded}"
                for item in report.size_mismatches
            ],
        ),
        (
            "quota counters that disagree with the rows",
            [
                f"  organization {item.organization_id} {item.name!r}: used_bytes "
                f"{item.used_bytes} (rows: {item.actual_bytes}), file_count {item.file_count} "
                f"(rows: {item.actual_files})" + done(item.fixed, "recounted")
                for item in report.counters
            ],
        ),
        (
            "recent bytes without a row, left alone (an upload may be committing)",
            [
                f"  {item.path} ({item.size} bytes, {age(item.age_seconds)} old)"
                for item in report.recent_orphans
            ],
        ),
    ]
    for title, lines in sections:
        if lines:
            click.echo(f"{title}: {len(lines)}")
            for line in lines:
                click.echo(line)
    left = report.problems_left
    if left == 0:
        click.echo("storage is consistent")
        return
    hint = "" if fix else "; `storage check --fix` repairs what is safe"
    click.echo(f"{left} problem(s) left{hint}", err=True)
    click.get_current_context().exit(1)


def init_app(app: Flask) -> None:
    """Register the commands on the app's CLI."""
    for command in (
        serve,
        jobs_cli,
        create_org,
        create_user,
        deactivate_user,
        activate_user,
        set_quota,
        invite,
        seed_data,
        storage_cli,
    ):
        app.cli.add_command(command)
