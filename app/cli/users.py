"""`manage.py users ...`: creating users and turning their access off and on."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..services import admin
from .operator import read_password, reports_domain_errors

group = AppGroup("users", help="Users: create, deactivate and activate.")


@group.command("create")
@click.argument("email")
@click.option("--org", "organization", required=True, help="Name of an existing organization.")
@click.option("--admin", "is_admin", is_flag=True, help="Make the user an organization admin.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@reports_domain_errors
def create(email: str, organization: str, is_admin: bool, password_stdin: bool) -> None:
    """Create a user EMAIL in an organization; the password is prompted for."""
    password = read_password(password_stdin)
    user = admin.create_user(email, password, organization, admin=is_admin)
    click.echo(f"created {user.role} {user.email} (user {user.id}) in {user.organization.name!r}")


@group.command("deactivate")
@click.argument("email")
@reports_domain_errors
def deactivate(email: str) -> None:
    """Disable EMAIL: logins are refused, sessions and API tokens stop working at once."""
    user, changed = admin.set_user_active(email, False)
    if changed:
        click.echo(f"deactivated {user.email}; their sessions and API tokens no longer work")
    else:
        click.echo(f"{user.email} was already inactive")


@group.command("activate")
@click.argument("email")
@reports_domain_errors
def activate(email: str) -> None:
    """Enable EMAIL again."""
    user, changed = admin.set_user_active(email, True)
    click.echo(f"activated {user.email}" if changed else f"{user.email} was already active")
