#!/usr/bin/env python
"""Coffer's command line: `python manage.py --help` lists every command."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

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


cli = FlaskGroup(create_app=make_app, help="Coffer administration.")
# The worker entry point lives in `jobs/`, which uses the app; the app never imports it.
cli.add_command(worker)

if __name__ == "__main__":
    cli()
