"""Organization endpoints: details, invites, users and their (de)activation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_login import current_user, login_required

from ..authentication import admin_required
from ..services import accounts
from . import schemas

bp = Blueprint("org", __name__, url_prefix="/api/org")


@bp.get("")
@login_required
def details() -> dict[str, Any]:
    """The caller's organization and its storage use."""
    return schemas.Organization.model_validate(current_user.organization).body()


@bp.post("/invites")
@login_required
@admin_required
def create_invite() -> tuple[dict[str, Any], int]:
    """Issue a single-use invite code."""
    invite = accounts.create_invite(current_user)
    return schemas.Invite(invite_code=invite.code, expires_at=invite.expires_at).body(), 201


@bp.get("/users")
@login_required
@admin_required
def users() -> dict[str, Any]:
    """Every user of the organization."""
    listed = accounts.list_users(current_user)
    return schemas.UserList(users=[schemas.User.model_validate(u) for u in listed]).body()


# Ids past the 32-bit id columns match no route (404) rather than overflow the database.
@bp.post("/users/<id:user_id>/deactivate")
@login_required
@admin_required
def deactivate(user_id: int) -> dict[str, Any]:
    """Stop a user's sessions and tokens from working."""
    user = accounts.set_active(current_user, user_id, active=False)
    return schemas.UserActivation.model_validate(user).body()


@bp.post("/users/<id:user_id>/activate")
@login_required
@admin_required
def activate(user_id: int) -> dict[str, Any]:
    """Let a deactivated user back in."""
    user = accounts.set_active(current_user, user_id, active=True)
    return schemas.UserActivation.model_validate(user).body()
