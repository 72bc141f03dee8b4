"""`manage.py`'s commands, one group per module; `init_app` registers them."""

from __future__ import annotations

import copy

import click
from flask import Flask

from .database import copy as database_copy
from .jobs import group as jobs_group
from .orgs import group as orgs_group
from .orgs import seed_data
from .previews import group as previews_group
from .serve import serve
from .storage import group as storage_group
from .trash import group as trash_group
from .users import group as users_group

COMMANDS: tuple[click.Command, ...] = (
    serve,
    jobs_group,
    users_group,
    orgs_group,
    seed_data,
    storage_group,
    trash_group,
    previews_group,
)

# The names the commands had before they were grouped: still accepted, no longer listed.
OLD_NAMES: dict[str, tuple[click.Group, str]] = {
    "create-org": (orgs_group, "create"),
    "set-quota": (orgs_group, "set-quota"),
    "invite": (orgs_group, "invite"),
    "create-user": (users_group, "create"),
    "deactivate-user": (users_group, "deactivate"),
    "activate-user": (users_group, "activate"),
}


def hidden_alias(command: click.Command) -> click.Command:
    """The same command, left out of `--help` listings."""
    alias = copy.copy(command)
    alias.hidden = True
    return alias


def init_app(app: Flask) -> None:
    """Register the command groups, and the old names as hidden aliases, on the app's CLI."""
    for command in COMMANDS:
        app.cli.add_command(command)
    for old_name, (group, name) in OLD_NAMES.items():
        app.cli.add_command(hidden_alias(group.commands[name]), old_name)
    # `db copy` joins Flask-Migrate's `db` group (registered before this, in create_app)
    # beside `db upgrade`, where an operator looks for it.
    migrations = app.cli.commands["db"]
    assert isinstance(migrations, click.Group)
    migrations.add_command(database_copy)
