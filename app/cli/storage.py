"""`manage.py storage check` and `storage migrate`: stored bytes against the database,
and every file copied to the other backend."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from .. import storage
from ..services import storage_check, storage_migrate

group = AppGroup("storage", help="Uploaded bytes: consistency with the database.")


def age(seconds: float) -> str:
    """A rough age: minutes under two hours, hours under two days, then days."""
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


@group.command("check")
@click.option("--fix", is_flag=True, help="Repair what is safe and report the rest.")
def check(fix: bool) -> None:
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


@group.command("migrate")
@click.option(
    "--to",
    "target_name",
    type=click.Choice(["s3", "local"]),
    required=True,
    help="The backend to copy every stored file to (the other one is read).",
)
def migrate(target_name: str) -> None:
    """Copy every stored file to the other backend, each copy read back and verified.

    Safe to run again after an interruption (copies that verify are skipped) and while
    Coffer serves (the source is never changed). Exits 1 if any file could not be copied.
    """
    config = current_app.config
    if target_name == "s3" and not str(config.get("S3_BUCKET") or "").strip():
        raise click.ClickException("set S3_BUCKET (and the other S3_* settings) first")
    source_name = "local" if target_name == "s3" else "s3"
    source = storage.build({**config, "STORAGE_BACKEND": source_name})
    target = storage.build({**config, "STORAGE_BACKEND": target_name})
    for backend in (source, target):
        backend.check()  # StorageUnavailable: a one-line error, before any copy
    click.echo(f"copying from {source.describe()} to {target.describe()}")
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            click.echo(f"  {done} of {total}")

    report = storage_migrate.migrate(source, target, progress)
    seconds = time.monotonic() - started
    click.echo(
        f"copied {report.copied} file(s) ({report.copied_bytes} bytes), "
        f"{report.already_there} already there, {report.vanished} deleted meanwhile, "
        f"in {seconds:.1f} s"
    )
    for file_id, reason in report.failures:
        click.echo(f"  file {file_id}: {reason}", err=True)
    if report.failures:
        click.echo(f"{len(report.failures)} file(s) not copied; run again once fixed", err=True)
        click.get_current_context().exit(1)
    current = config.get("STORAGE_BACKEND", "local")
    if current != target_name:
        click.echo(
            f"every file is in {target_name}: set STORAGE_BACKEND={target_name}, restart "
            f"the web and worker processes, then run this again to copy what was uploaded "
            f"meanwhile"
        )
    else:
        click.echo(f"STORAGE_BACKEND is already {target_name}: nothing more to set")
