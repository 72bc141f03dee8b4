"""Organization endpoints: details, invites, users and their (de)activation."""

from __future__ import annotations

from typing import Any

from flask_login import current_user, login_required

from .. import schemas
from ..authentication import admin_required
from ..files import retention
from ..services import accounts
from .contract import (
    E400_WRITE,
    E401,
    E403_ADMIN,
    READ,
    USER_ID,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    operation,
    ref,
    response,
)
from .inputs import parse_body

bp = DocumentedBlueprint("org", __name__, url_prefix="/api/org")


@bp.get(
    "",
    openapi=operation(
        "getOrganization",
        "The caller's organization and its storage use",
        "organization",
        {"200": response("The organization.", ref(schemas.Organization)), "401": E401},
        security=READ,
    ),
)
@login_required
def details() -> dict[str, Any]:
    """The caller's organization and its storage use."""
    return schemas.Organization.model_validate(retention.details(current_user.organization)).body()


@bp.patch(
    "",
    openapi=operation(
        "updateOrganization",
        "Set the organization's trash retention and versions kept (admin)",
        "organization",
        {
            "200": response("The organization as it now is.", ref(schemas.Organization)),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ADMIN,
        },
        security=WRITE,
        body=json_body(schemas.OrganizationChangeRequest),
        description="Absent or null fields keep their value. A shorter retention applies to "
        "what is in the trash already: the next sweep purges what it makes due.",
    ),
)
@login_required
@admin_required
def update() -> dict[str, Any]:
    """Set the organization's retention settings."""
    body = parse_body(schemas.OrganizationChangeRequest)
    org = retention.update_settings(
        current_user,
        trash_retention_days=body.trash_retention_days,
        versions_kept=body.versions_kept,
    )
    return schemas.Organization.model_validate(retention.details(org)).body()


@bp.post(
    "/invites",
    openapi=operation(
        "createInvite",
        "Issue a single-use invite code (admin)",
        "organization",
        {
            "201": response("The code, shown once.", ref(schemas.Invite)),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ADMIN,
        },
        security=WRITE,
    ),
)
@login_required
@admin_required
def create_invite() -> tuple[dict[str, Any], int]:
    """Issue a single-use invite code."""
    invite = accounts.create_invite(current_user)
    return schemas.Invite(invite_code=invite.code, expires_at=invite.expires_at).body(), 201


@bp.get(
    "/users",
    openapi=operation(
        "listUsers",
        "Every user of the organization (admin)",
        "organization",
        {"200": response("The users.", ref(schemas.UserList)), "401": E401, "403": E403_ADMIN},
        security=READ,
    ),
)
@login_required
@admin_required
def users() -> dict[str, Any]:
    """Every user of the organization."""
    listed = accounts.list_users(current_user)
    return schemas.UserList(users=[schemas.User.model_validate(u) for u in listed]).body()


def user_activation(action: str, active: bool) -> dict[str, Any]:
    """The operation of POST /api/org/users/{user_id}/activate or /deactivate."""
    responses: dict[str, Any] = {
        "200": response(
            f"The user, now {'active' if active else 'inactive'}.", ref(schemas.UserActivation)
        ),
        "400": E400_WRITE,
        "401": E401,
        "403": E403_ADMIN,
        "404": error("no such user in the organization.", "not_found"),
    }
    if not active:
        responses["409"] = error("an admin cannot deactivate themselves.", "cannot_deactivate_self")
    return operation(
        f"{action}User",
        f"{action.capitalize()} a user (admin)",
        "organization",
        responses,
        security=WRITE,
        parameters=[USER_ID],
        description="A deactivated user's sessions and tokens stop working at once."
        if not active
        else None,
    )


# Ids past the 32-bit id columns match no route (404) rather than overflow the database.
@bp.post("/users/<id:user_id>/deactivate", openapi=user_activation("deactivate", active=False))
@login_required
@admin_required
def deactivate(user_id: int) -> dict[str, Any]:
    """Stop a user's sessions and tokens from working."""
    user = accounts.set_active(current_user, user_id, active=False)
    return schemas.UserActivation.model_validate(user).body()


@bp.post("/users/<id:user_id>/activate", openapi=user_activation("activate", active=True))
@login_required
@admin_required
def activate(user_id: int) -> dict[str, Any]:
    """Let a deactivated user back in."""
    user = accounts.set_active(current_user, user_id, active=True)
    return schemas.UserActivation.model_validate(user).body()
