"""`manage.py db copy`: every table of the current database into another one (SQLite to
PostgreSQL, or back); it joins Flask-Migrate's `db` group beside `db upgrade`."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from ..services import database_copy


@click.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="The database to fill, e.g. postgresql://coffer:...@db-host:5432/coffer: "
    "migrated to the same revision (`db upgrade` with DATABASE_URL set to it) and empty.",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=database_copy.BATCH_ROWS,
    show_default=True,
    help="Rows read and written at a time.",
)
@with_appcontext
def copy(target: str, batch_rows: int) -> None:
    """Copy every table of DATABASE_URL's database into the database at --to.

    Stop the web and worker processes first: rows written after the copy starts are not
    copied. The copy is one transaction on the target, verified (rows per table, files
    per status) before it commits: on any error the target stays empty. The uploaded bytes
    are not touched; point the new DATABASE_URL at the same storage.
    """
    started = time.monotonic()

    def progress(table: str, rows: int) -> None:
        if rows % (batch_rows * 100) == 0:
            click.echo(f"  {table}: {rows} row(s)...")

    try:
        report = database_copy.copy_database(target, batch_rows, progress)
    except database_copy.CopyRefused as refusal:
        raise click.ClickException(str(refusal)) from None
    click.echo(f"copied {report.source} to {report.target} (migration {report.revision}):")
    for table, rows in report.rows.items():
        click.echo(f"  {table}: {rows} row(s)")
    click.echo(
        f"verified: every table has the source's rows; {len(report.sequences_reset)} id "
        f"sequence(s) moved past the copied ids; in {time.monotonic() - started:.1f} s"
    )
    click.echo("now set DATABASE_URL to the target and start Coffer again")
