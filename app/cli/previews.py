"""`manage.py previews backfill`: queue the previews of files stored before previews came."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..files import previews
from ..services import admin
from .operator import reports_domain_errors

group = AppGroup("previews", help="Previews: the small and large images of images and PDFs.")


@group.command("backfill")
@click.option("--org", "org_name", default=None, help="Only this organization (its name).")
@reports_domain_errors
def backfill(org_name: str | None) -> None:
    """Queue the making of previews for every ready image and PDF that has none; the
    workers make them."""
    organization_id = admin.get_organization(org_name).id if org_name is not None else None
    queued = previews.backfill(organization_id)
    click.echo(f"queued the previews of {queued} file(s)")
