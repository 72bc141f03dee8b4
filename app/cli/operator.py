"""What the operator commands share: refused requests as `Error: ...`, and passwords."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import click

from ..services.errors import DomainError

F = TypeVar("F", bound=Callable[..., Any])


def reports_domain_errors(command: F) -> F:
    """Report a rule's refusal as `Error: <message>` on stderr with exit status 1.

    The one place the CLI turns the domain's errors into its own.
    """

    @wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None

    return cast(F, wrapped)


def read_password(from_stdin: bool) -> str:
    """The password from the first line of stdin, or typed twice at a hidden prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(password)
