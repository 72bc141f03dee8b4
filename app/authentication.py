"""How a request is authenticated: session cookie or bearer token, and CSRF for cookies."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Request, g, request, session
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from . import session_store
from .errors import APIError
from .extensions import csrf, login_manager
from .files import policy
from .models import User
from .services import activity
from .services.accounts import load_active_user
from .services.tokens import token_for_secret

F = TypeVar("F", bound=Callable[..., Any])

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Register and login create the session, so there is no token to send yet.
# An upload-only link's endpoints check the visitor's token themselves, after naming the
# organization the body's file goes to (a form field read here would parse it first).
CSRF_EXEMPT_ENDPOINTS = frozenset(
    {
        "auth.register",
        "auth.login",
        "web.request_upload",
        "web.request_tus_create",
        "web.request_tus_append",
    }
)
# Writes by method that change no data: a zip of a selection is a download with a body,
# and a logout ends the caller's session (a token has none), whatever it may change.
READING_WRITES = frozenset({"archives.download_selection", "auth.logout"})
# The user's session generation (users.session_generation) when the session was started;
# a session without it is void.
SESSION_GENERATION_FIELD = "_coffer_session_generation"


def bearer_secret(req: Request) -> str | None:
    """The secret of an `Authorization: Bearer` header, if there is one."""
    header = req.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


@login_manager.user_loader
def load_session_user(user_id: str) -> User | None:
    """The session's user; a bearer header takes precedence over any cookie."""
    if bearer_secret(request) is not None:
        return None
    try:
        user = load_active_user(int(user_id))
    except ValueError:
        user = None
    if user is None or session.get(SESSION_GENERATION_FIELD) != user.session_generation:
        # A deactivated user's session is void for good: destroy it.
        session.clear()
        return None
    g.auth_method = "session"
    return user


def start_session(user: User) -> str:
    """Log the user in on a fresh session id and return its new CSRF token."""
    session.clear()
    login_user(user)
    session[SESSION_GENERATION_FIELD] = user.session_generation
    # The pre-login session id (possibly planted by someone else) is never the
    # authenticated one.
    session_store.regenerate(session)
    return str(generate_csrf())


def end_session() -> None:
    """Log out and destroy the server-side session."""
    if current_user.is_authenticated:
        activity.record_now(
            "auth.logout",
            current_user.organization_id,
            activity.acting(current_user),
            activity.Target("user", str(current_user.id), current_user.email),
        )
    logout_user()
    session.clear()


@login_manager.request_loader
def load_token_user(req: Request) -> User | None:
    """The user of a bearer token, checked on every request."""
    secret = bearer_secret(req)
    if secret is None:
        return None
    token = token_for_secret(secret)
    if token is None:
        return None
    g.auth_method = "token"
    g.token_access = token.access
    # The activity record names the token as the actor.
    g.token_id = token.id
    return token.user


@login_manager.unauthorized_handler
def unauthorized() -> None:
    """Protected endpoints answer 401 JSON, never a redirect to a login page."""
    raise APIError(401, "unauthorized", "authentication required")


def admin_required(view: F) -> F:
    """Restrict a (login-protected) view to the organization's admins.

    The services refuse non-admins themselves; refusing here as well answers 403 before
    the body is read, so a non-admin's malformed request is refused, not corrected.
    """

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        policy.require_admin(current_user)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def check_csrf() -> None:
    """Cookie-authenticated writes must carry the session's CSRF token."""
    if request.method not in WRITE_METHODS or request.endpoint in CSRF_EXEMPT_ENDPOINTS:
        return
    if request.routing_exception is not None:
        return  # an unknown URL or method answers 404/405, whatever the token
    if not current_user.is_authenticated or g.get("auth_method") != "session":
        return
    header_token = request.headers.get("X-CSRF-Token")
    if header_token is None:
        # Flask-WTF falls back to the csrf_token form field.
        csrf.protect()
        return
    # Checked directly so a multipart body is not parsed just to look for the field.
    try:
        validate_csrf(header_token)
    except ValidationError as exc:
        raise CSRFError(exc.args[0]) from None


def changes_data(method: str, endpoint: str | None) -> bool:
    """Whether a request by this method to this endpoint changes data: every write method
    (POST, PUT, PATCH, DELETE), but for READING_WRITES. The OpenAPI document lists the
    refusal of read-only tokens on the same operations."""
    return method in WRITE_METHODS and endpoint not in READING_WRITES


def check_token_access() -> None:
    """The one place a token's access is enforced: a request that changes data, by a
    read-only API token, is refused (403 insufficient_scope) before its view runs."""
    if request.routing_exception is not None:
        return  # an unknown URL or method answers 404/405, whatever the token
    if not changes_data(request.method, request.endpoint):
        return
    if not current_user.is_authenticated or g.get("auth_method") != "token":
        return
    policy.require_change_access(g.token_access)


def keep_session_after_password_change(user: User) -> None:
    """After the user changed their password (which ends every session of theirs), keep
    the caller's own session alive, and delete the user's other stored sessions now."""
    if g.get("auth_method") != "session":
        end_sessions_of(user)
        return
    session[SESSION_GENERATION_FIELD] = user.session_generation
    session_store.end_sessions(user.id, keep=session_store.current_id(session))


def end_sessions_of(user: User) -> None:
    """Delete every stored session of a user whose password was set for them (their session
    generation was raised already, which voids the sessions anyway)."""
    session_store.end_sessions(user.id, keep=None)


def init_app(app: Flask) -> None:
    """Bind Flask-Login and CSRF, and check CSRF and token access before every view."""
    login_manager.init_app(app)
    csrf.init_app(app)
    app.before_request(check_csrf)
    app.before_request(check_token_access)
