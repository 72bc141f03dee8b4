"""`manage.py orgs ...` and `seed-data`: organizations, their quotas and invites."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from ..config import MiB
from ..files.ledger import fits_quota
from ..models import isoformat
from ..services import admin
from .operator import read_password, reports_domain_errors

group = AppGroup("orgs", help="Organizations: create, set quotas, issue invites.")


def megabytes(size: int) -> str:
    """A byte count in MiB with one decimal."""
    return f"{size / MiB:.1f} MiB"


@group.command("create")
@click.argument("name")
@click.option(
    "--quota-mb",
    type=click.IntRange(min=0),
    default=None,
    help="Storage quota in MiB.  [default: $STORAGE_QUOTA_MB]",
)
@reports_domain_errors
def create(name: str, quota_mb: int | None) -> None:
    """Create the organization NAME."""
    org = admin.create_organization(name, quota_mb)
    click.echo(
        f"created organization {org.id} {org.name!r} with a quota of {org.storage_quota_mb} MiB"
    )


@group.command("set-quota")
@click.argument("org")
@click.argument("mb", type=click.IntRange(min=0))
@reports_domain_errors
def set_quota(org: str, mb: int) -> None:
    """Set the storage quota of organization ORG to MB mebibytes (MiB)."""
    organization = admin.set_quota(org, mb)
    click.echo(
        f"quota of {organization.name!r} set to {mb} MiB "
        f"({megabytes(organization.used_bytes)} used)"
    )
    if not fits_quota(organization.used_bytes, organization.reserved_bytes, mb):
        click.echo(
            "warning: usage is over the new quota; uploads get 507 until files are deleted",
            err=True,
        )


@group.command("invite")
@click.argument("org")
@reports_domain_errors
def invite(org: str) -> None:
    """Issue a single-use invite code to organization ORG (the code alone goes to stdout)."""
    issued = admin.issue_invite(org)
    click.echo(
        f"invite to {org.strip()!r}, single use, expires {isoformat(issued.expires_at)}:", err=True
    )
    click.echo(issued.code)


# Top-level rather than under `orgs`: it makes a user as well, and is for development only.
@click.command("seed-data")
@click.option("--email", default=admin.SEED_ADMIN_EMAIL, show_default=True, help="Admin email.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the admin's password from stdin instead of generating one.",
)
@with_appcontext
@reports_domain_errors
def seed_data(email: str, password_stdin: bool) -> None:
    """Development only: the "Acme Corp" organization and an admin."""
    password = read_password(True) if password_stdin else None
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
