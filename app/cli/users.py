"""`manage.py users ...`: creating users, their roles and passwords, turning their access off
and on."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..models import Role
from ..services import admin
from .operator import read_password, reports_domain_errors

group = AppGroup(
    "users", help="Users: create, deactivate and activate, set their role and password."
)


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


@group.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@reports_domain_errors
def set_role(email: str, role: str) -> None:
    """Make EMAIL an organization admin or a member (never the last active admin a member)."""
    user, changed = admin.set_user_role(email, Role(role))
    article = "an" if role == Role.ADMIN else "a"
    click.echo(f"{user.email} is {'now' if changed else 'already'} {article} {role}")


@group.command("set-password")
@click.argument("email")
@reports_domain_errors
def set_password(email: str) -> None:
    """Set EMAIL's password, read from the first line of standard input; their sessions end."""
    password = read_password(True)
    user = admin.set_user_password(email, password)
    click.echo(f"password of {user.email} set; their sessions have ended")
