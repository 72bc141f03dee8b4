"""Auth endpoints: register, login, logout, me, csrf."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from ..authentication import end_session, start_session
from ..extensions import limiter
from ..models import User
from ..services import accounts
from .inputs import json_body, parsed_json, string_field

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


def identity(user: User) -> dict[str, Any]:
    """The fields register and login answer with."""
    return {
        "user_id": user.id,
        "email": user.email,
        "organization_id": user.organization_id,
        "role": user.role,
    }


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
    body = json_body()
    email = string_field(body, "email")
    password = string_field(body, "password", strip=False, max_length=1024, allow_control=True)
    org_name = string_field(body, "organization_name", max_length=1024)
    invite_code = string_field(body, "invite_code", required=False, max_length=256)
    user = accounts.register(email, password, org_name, invite_code or None)  # type: ignore[arg-type]
    return {**identity(user), "csrf_token": start_session(user)}, 201


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
    body = json_body()
    email = string_field(body, "email", max_length=1024)
    password = string_field(body, "password", strip=False, max_length=1024, allow_control=True)
    user = accounts.authenticate(email, password)  # type: ignore[arg-type]
    return {**identity(user), "csrf_token": start_session(user)}


@bp.post("/logout")
@login_required
def logout() -> dict[str, Any]:
    """Destroy the server-side session."""
    end_session()
    return {"success": True}


@bp.get("/me")
@login_required
def me() -> dict[str, Any]:
    """Who the caller is."""
    return {
        "user_id": current_user.id,
        "email": current_user.email,
        "organization_id": current_user.organization_id,
        "organization_name": current_user.organization.name,
        "role": current_user.role,
    }


@bp.get("/csrf")
def csrf_token() -> dict[str, Any]:
    """The CSRF token for the current session."""
    return {"csrf_token": generate_csrf()}
