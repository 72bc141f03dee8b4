"""Organization endpoints: details, invites, users and their (de)activation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_login import current_user, login_required

from ..authentication import admin_required
from ..models import User, isoformat
from ..services import accounts

bp = Blueprint("org", __name__, url_prefix="/api/org")


def user_summary(user: User) -> dict[str, Any]:
    """A user as the admin sees them."""
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
        "created_at": isoformat(user.created_at),
    }


@bp.get("")
@login_required
def details() -> dict[str, Any]:
    """The caller's organization and its storage use."""
    org = current_user.organization
    return {
        "id": org.id,
        "name": org.name,
        "storage_quota_mb": org.storage_quota_mb,
        "used_bytes": org.used_bytes,
        "file_count": org.file_count,
        "created_at": isoformat(org.created_at),
    }


@bp.post("/invites")
@login_required
@admin_required
def create_invite() -> tuple[dict[str, Any], int]:
    """Issue a single-use invite code."""
    invite = accounts.create_invite(current_user.organization_id, created_by=current_user.id)
    return {"invite_code": invite.code, "expires_at": isoformat(invite.expires_at)}, 201


@bp.get("/users")
@login_required
@admin_required
def users() -> dict[str, Any]:
    """Every user of the organization."""
    return {"users": [user_summary(u) for u in accounts.list_users(current_user.organization_id)]}


# Ids past the 32-bit id columns match no route (404) rather than overflow the database.
@bp.post("/users/<int(max=2147483647):user_id>/deactivate")
@login_required
@admin_required
def deactivate(user_id: int) -> dict[str, Any]:
    """Stop a user's sessions and tokens from working."""
    user = accounts.set_active(current_user, user_id, active=False)
    return {"id": user.id, "is_active": user.is_active}


@bp.post("/users/<int(max=2147483647):user_id>/activate")
@login_required
@admin_required
def activate(user_id: int) -> dict[str, Any]:
    """Let a deactivated user back in."""
    user = accounts.set_active(current_user, user_id, active=True)
    return {"id": user.id, "is_active": user.is_active}
