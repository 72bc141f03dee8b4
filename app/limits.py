"""The rate limits on signing in and signing up, and on share links, shared by the API and
the web pages.

Shared limits (one counter per scope and key), so an address or an email gets the same
number of attempts whether it signs in through `/api/auth/login` or the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, current_app, request
from flask_limiter.util import get_remote_address

from .extensions import limiter

F = TypeVar("F", bound=Callable[..., Any])


def login_email_key() -> str:
    """Rate-limit key for one email from one client address (JSON body or form)."""
    email: Any = None
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested past the parser's limit: no email to key on
            body = None
        email = body.get("email") if isinstance(body, dict) else None
    elif request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        email = request.form.get("email")
    email = email.strip().lower() if isinstance(email, str) else ""
    return f"{email}|{get_remote_address()}"


def login_limits(view: F) -> F:
    """Per address, and per email from an address (LOGIN_LIMIT_PER_*)."""
    per_email = limiter.shared_limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_EMAIL"],
        scope="login-email",
        key_func=login_email_key,
    )
    per_address = limiter.shared_limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
        scope="login-address",
        key_func=get_remote_address,
    )
    return cast(F, per_address(per_email(view)))


def password_limit(view: F) -> F:
    """Per address, counted with the logins of that address (LOGIN_LIMIT_PER_ADDRESS): a
    current password guessed is a password guessed."""
    per_address = limiter.shared_limit(
        lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
        scope="login-address",
        key_func=get_remote_address,
    )
    return cast(F, per_address(view))


def register_limit(view: F) -> F:
    """Per address (REGISTER_LIMIT_PER_ADDRESS)."""
    limit = limiter.shared_limit(
        lambda: current_app.config["REGISTER_LIMIT_PER_ADDRESS"],
        scope="register-address",
        key_func=get_remote_address,
    )
    return cast(F, limit(view))


def share_limit(view: F) -> F:
    """Per address (SHARE_LIMIT_PER_ADDRESS), one counter for a share link's downloads, its
    page and its preview: each request is as much a guess at a secret."""
    limit = limiter.shared_limit(
        lambda: current_app.config["SHARE_LIMIT_PER_ADDRESS"],
        scope="share-address",
        key_func=get_remote_address,
    )
    return cast(F, limit(view))


def limits_outside_views() -> bool:
    """Whether any limit is checked before the view rather than by a decorated view:
    application, default, blueprint or meta limits, hints, or an in-memory fallback."""
    # These are Flask-Limiter's private attributes (4.1): one it no longer has counts as a
    # limit, so an upgrade that renames them checks every request again, never none.
    manager = limiter.limit_manager
    held = (
        (manager, "_application_limits"),
        (manager, "_default_limits"),
        (manager, "_blueprint_limits"),
        (manager, "_endpoint_hints"),
        (limiter, "_meta_limits"),
        (limiter, "_in_memory_fallback_enabled"),
    )
    return any(getattr(owner, name, True) for owner, name in held)


def check_limits_before_view() -> None:
    """Flask-Limiter's before-request check, run only when it has a limit to check."""
    # Decorated views check their own limits when called; for every other request the
    # check resolves nothing, at a cost that is a good part of a small request's.
    if limits_outside_views():
        limiter._check_request_limit()


def init_app(app: Flask) -> None:
    """Bind the limiter, with its before-request check only where a limit needs it."""
    limiter.init_app(app)
    hooks = app.before_request_funcs.setdefault(None, [])
    if limiter._check_request_limit in hooks:
        hooks[hooks.index(limiter._check_request_limit)] = check_limits_before_view
