"""The domain's own errors: what a rule refused and why, in no protocol's terms.

The HTTP layer maps each class to a status (app/errors.py) and the CLI reports any of them
as `Error: <message>` (app/cli/operator.py); services never speak of either.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused a request: a machine code, a human message and extra fields."""

    def __init__(self, code: str, message: str, /, **extra: Any) -> None:
        # Positional-only, so an extra field may be named `code`, `message` or `status`.
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class InvalidInput(DomainError):
    """A value breaks the rules for it; `field` names the input when there is one."""

    def __init__(self, code: str, message: str, /, *, field: str | None = None) -> None:
        if field is None:
            super().__init__(code, message)
        else:
            super().__init__(code, message, field=field)
        self.field = field


class InvalidCredentials(DomainError):
    """The email and password do not name an account (alike for either being wrong)."""


class AccountDisabled(DomainError):
    """The credentials are right but the account has been deactivated."""


class NotAllowed(DomainError):
    """The caller may not do this (role, ownership or environment)."""


class NotFound(DomainError):
    """No such object, or one the caller's organization does not own."""


class NoPreview(NotFound):
    """The file exists but has no preview image (not an image or PDF, not yet made, too
    large or undecodable)."""

    def __init__(self, message: str = "the file has no preview", /) -> None:
        super().__init__("no_preview", message)


class Conflict(DomainError):
    """The request clashes with the current state (taken, exists, not ready, ...)."""


class Gone(DomainError):
    """The object is known but its bytes are no longer there."""


class TooLarge(DomainError):
    """A file is over the configured size limit."""


class QuotaExceeded(DomainError):
    """The organization's storage quota has no room for this."""
