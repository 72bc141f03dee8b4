"""Auth endpoints: register, login, logout, me, csrf."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from .. import schemas
from ..authentication import end_session, start_session
from ..limits import login_limits, register_limit
from ..models import Role, User
from ..services import accounts
from .inputs import parse_body

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


@bp.post("/register")
@register_limit
def register() -> tuple[dict[str, Any], int]:
    """Create an account (and organization); the caller is logged in."""
    body = parse_body(schemas.RegisterRequest)
    user = accounts.register(body.email, body.password, body.organization_name, body.invite_code)
    return identity(user), 201


@bp.post("/login")
@login_limits
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
