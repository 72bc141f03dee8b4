"""Auth endpoints: register, login, logout, me, csrf."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from ..authentication import end_session, start_session
from ..extensions import limiter
from ..models import Role, User
from ..services import accounts
from . import schemas
from .inputs import parse_body, parsed_json

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


def identity(user: User) -> dict[str, Any]:
    """What register and login answer: the user, then the CSRF token of the session started."""
    return schemas.Identity(
        user_id=user.id,
        email=user.email,
        organization_id=user.organization_id,
        role=Role(user.role),
        csrf_token=start_session(user),  # last: the user's fields are read before
    ).body()


def login_email_key() -> str:
    """Rate-limit key for one email from one client address."""
    body = parsed_json()
    email = body.get("email") if isinstance(body, dict) else None
    email = email.strip().lower() if isinstance(email, str) else ""
    return f"{email}|{get_remote_address()}"


@bp.post("/register")
@limiter.limit(
    lambda: current_app.config["REGISTER_LIMIT_PER_ADDRESS"],
    key_func=get_remote_address,
    scope="register-address",
)
def register() -> tuple[dict[str, Any], int]:
    """Create an account (and organization); the caller is logged in."""
    body = parse_body(schemas.RegisterRequest)
    user = accounts.register(body.email, body.password, body.organization_name, body.invite_code)
    return identity(user), 201


@bp.post("/login")
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    key_func=get_remote_address,
    scope="login-address",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_EMAIL"],
    key_func=login_email_key,
    scope="login-email",
)
def login() -> dict[str, Any]:
    """Check credentials and start a new session."""
    body = parse_body(schemas.LoginRequest)
    return identity(accounts.authenticate(body.email, body.password))


@bp.post("/logout")
@login_required
def logout() -> dict[str, Any]:
    """Destroy the server-side session."""
    end_session()
    return schemas.Success(success=True).body()


@bp.get("/me")
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


@bp.get("/csrf")
def csrf_token() -> dict[str, Any]:
    """The CSRF token for the current session."""
    return schemas.CsrfToken(csrf_token=generate_csrf()).body()
