#!/usr/bin/env python
"""Coffer's command line: `python manage.py --help` lists every command."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup, routes_command, shell_command

from app import create_app
from app.config import ConfigError
from jobs.cli import worker


def make_app():
    """Create the app, turning a configuration error into a one-line message."""
    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


class CofferGroup(FlaskGroup):
    """Flask's command group without the plugin commands that do not belong in Coffer's:
    `limiter` comes from Flask-Limiter's entry point and reports on limits Coffer keeps in
    code. Flask offers no switch for plugin commands, so they are left out by name."""

    LEFT_OUT = frozenset({"limiter"})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands, less those left out."""
        return [name for name in super().list_commands(ctx) if name not in self.LEFT_OUT]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """A command by name; none for those left out."""
        return None if name in self.LEFT_OUT else super().get_command(ctx, name)


# Flask's default commands but `run`, its development server: Coffer serves with `serve`.
cli = CofferGroup(create_app=make_app, add_default_commands=False, help="Coffer administration.")
cli.add_command(shell_command)
cli.add_command(routes_command)
# The worker entry point lives in `jobs/`, which uses the app; the app never imports it.
cli.add_command(worker)

if __name__ == "__main__":
    cli()
