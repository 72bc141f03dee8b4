"""`manage.py trash purge`: remove for good what is due in the trash, now."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..files import trash
from ..services import admin
from .operator import reports_domain_errors

group = AppGroup("trash", help="The trash: purge what has been there long enough.")


@group.command("purge")
@click.option("--org", "org_name", default=None, help="Only this organization (its name).")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=0),
    default=None,
    help="Items deleted at least DAYS ago, whatever the organizations' retention "
    "(0: everything in the trash).  [default: each organization's trash_retention_days]",
)
@reports_domain_errors
def purge(org_name: str | None, days: int | None) -> None:
    """Remove for good, with their bytes, the trash's items that are due, as the worker's
    sweep does, and finish any purge that was cut short."""
    organization_id = admin.get_organization(org_name).id if org_name is not None else None
    gone = trash.purge_due(organization_id=organization_id, older_than_days=days)
    click.echo(f"purged {gone} file(s) and folder(s) from the trash")
