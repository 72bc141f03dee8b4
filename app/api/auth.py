"""Auth endpoints: register, login, logout, me, csrf, password."""

from __future__ import annotations

from typing import Any

from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from .. import schemas
from ..authentication import end_session, keep_session_after_password_change, start_session
from ..limits import login_limits, password_limit, register_limit
from ..models import Role, User
from ..services import accounts, passwords
from .contract import (
    E400_WRITE,
    E401,
    E413_JSON,
    JSON_BODY_CODES,
    PUBLIC,
    READ,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    operation,
    ref,
    response,
)
from .inputs import parse_body

bp = DocumentedBlueprint("auth", __name__, url_prefix="/api/auth")


def identity(user: User) -> dict[str, Any]:
    """What register and login answer: the user, then the CSRF token of the session started."""
    return schemas.Identity(
        user_id=user.id,
        email=user.email,
        organization_id=user.organization_id,
        role=Role(user.role),
        csrf_token=start_session(user),  # last: the user's fields are read before
    ).body()


@bp.post(
    "/register",
    openapi=operation(
        "register",
        "Create an account, and its organization when the name is new",
        "auth",
        {
            "201": response(
                "Registered and logged in (session cookie set).", ref(schemas.Identity)
            ),
            "400": error(
                "the body is not a JSON object of the fields, the email is malformed, the "
                "password is shorter than 10 characters or one of the 10,000 most common "
                "(weak_password) or longer than 72 bytes (invalid_password), or the "
                "invite code is wrong, used or expired.",
                *JSON_BODY_CODES,
                "invalid_email",
                "weak_password",
                "invalid_password",
                "invite_invalid",
            ),
            "409": error(
                "the email is taken, the organization needs an invite, or a concurrent "
                "registration took either first.",
                "email_taken",
                "invite_required",
                "conflict",
            ),
            "413": E413_JSON,
            "429": error(
                "too many registrations from this address; `Retry-After` says when to try again.",
                "rate_limited",
            ),
        },
        security=PUBLIC,
        body=json_body(schemas.RegisterRequest),
    ),
)
@register_limit
def register() -> tuple[dict[str, Any], int]:
    """Create an account (and organization); the caller is logged in."""
    body = parse_body(schemas.RegisterRequest)
    user = accounts.register(body.email, body.password, body.organization_name, body.invite_code)
    return identity(user), 201


@bp.post(
    "/login",
    openapi=operation(
        "login",
        "Log in; the session id is rotated",
        "auth",
        {
            "200": response("Logged in (session cookie set).", ref(schemas.Identity)),
            "400": error("the body is not a JSON object of the fields.", *JSON_BODY_CODES),
            "401": error("alike for an unknown email and a wrong password.", "invalid_credentials"),
            "403": error("only after a correct password.", "account_disabled"),
            "413": E413_JSON,
            "429": error(
                "too many attempts; `Retry-After` says when to try again.", "rate_limited"
            ),
        },
        security=PUBLIC,
        body=json_body(schemas.LoginRequest),
    ),
)
@login_limits
def login() -> dict[str, Any]:
    """Check credentials and start a new session."""
    body = parse_body(schemas.LoginRequest)
    return identity(accounts.authenticate(body.email, body.password))


@bp.post(
    "/logout",
    openapi=operation(
        "logout",
        "Destroy the server-side session",
        "auth",
        {"200": response("Logged out.", ref(schemas.Success)), "400": E400_WRITE, "401": E401},
        security=WRITE,
    ),
)
@login_required
def logout() -> dict[str, Any]:
    """Destroy the server-side session."""
    end_session()
    return schemas.Success(success=True).body()


@bp.post(
    "/password",
    openapi=operation(
        "changePassword",
        "Change the caller's password; every other session of theirs ends",
        "auth",
        {
            "204": response("Changed; the caller's own session (if any) goes on."),
            "400": error(
                "the body is not a JSON object of the fields, the current password is not "
                "right (wrong_password), the new one is shorter than 10 characters or one of "
                "the 10,000 most common (weak_password) or longer than 72 bytes "
                "(invalid_password), or a session write lacks its CSRF token.",
                *JSON_BODY_CODES,
                "wrong_password",
                "weak_password",
                "invalid_password",
                "csrf_failed",
            ),
            "401": E401,
            "413": E413_JSON,
            "429": error(
                "too many attempts from this address (counted with logins); `Retry-After` "
                "says when to try again.",
                "rate_limited",
            ),
        },
        security=WRITE,
        body=json_body(schemas.PasswordChangeRequest),
        description="API tokens keep working; revoke them apart if they may have leaked.",
    ),
)
@login_required
@password_limit
def change_password() -> tuple[str, int]:
    """Change the caller's password; their other sessions end."""
    body = parse_body(schemas.PasswordChangeRequest)
    passwords.change_password(current_user, body.current_password, body.new_password)
    keep_session_after_password_change(current_user)
    return "", 204


@bp.get(
    "/me",
    openapi=operation(
        "me",
        "Who the caller is",
        "auth",
        {"200": response("The caller.", ref(schemas.Me)), "401": E401},
        security=READ,
    ),
)
@login_required
def me() -> dict[str, Any]:
    """Who the caller is."""
    return schemas.Me(
        user_id=current_user.id,
        email=current_user.email,
        organization_id=current_user.organization_id,
        organization_name=current_user.organization.name,
        role=Role(current_user.role),
    ).body()


@bp.get(
    "/csrf",
    openapi=operation(
        "csrf",
        "The CSRF token of the current session",
        "auth",
        {"200": response("The token.", ref(schemas.CsrfToken))},
        security=PUBLIC,
    ),
)
def csrf_token() -> dict[str, Any]:
    """The CSRF token for the current session."""
    return schemas.CsrfToken(csrf_token=generate_csrf()).body()
