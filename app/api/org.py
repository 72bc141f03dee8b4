"""Organization endpoints: details, invites, users, their roles, password resets and
(de)activation."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_login import current_user, login_required

from .. import schemas
from ..authentication import admin_required
from ..files import retention
from ..services import accounts, passwords
from .contract import (
    E400_WRITE,
    E401,
    E403_ADMIN,
    E413_JSON,
    INVITE_ID,
    JSON_BODY_CODES,
    READ,
    USER_ID,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    link,
    operation,
    optional_json_body,
    ref,
    response,
    with_links,
)
from .inputs import parse_body, parse_optional_body

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
            "400": error(
                "the body is not a JSON object of the fields (`trash_retention_days` 0 to "
                f"{retention.MAX_TRASH_RETENTION_DAYS}, `versions_kept` 1 to "
                f"{retention.MAX_VERSIONS_KEPT}), or a session write lacks its CSRF token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "403": E403_ADMIN,
            "413": E413_JSON,
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
        "Issue a single-use invite link (admin)",
        "organization",
        {
            "201": with_links(
                response("The invite; its code and link are shown once.", ref(schemas.Invite)),
                RevokeInvite=link("revokeInvite", invite_id="$response.body#/id"),
            ),
            "400": error(
                "the body is not a JSON object of the fields (`role` admin or member, "
                f"`expires_in` {accounts.MIN_INVITE_EXPIRES_IN} to "
                f"{accounts.MAX_INVITE_EXPIRES_IN}), or a session write lacks its CSRF token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "403": E403_ADMIN,
            "413": E413_JSON,
        },
        security=WRITE,
        body=optional_json_body(schemas.InviteRequest),
        description="No body at all takes every default, as `{}` does: a member's invite "
        "for INVITE_TTL_HOURS. `url` opens a page that signs the invitee up into this "
        "organization, with `role`, without typing its name; `invite_code` also works with "
        "POST /api/auth/register and the organization's name.",
    ),
)
@login_required
@admin_required
def create_invite() -> tuple[dict[str, Any], int]:
    """Issue a single-use invite link."""
    body = parse_optional_body(schemas.InviteRequest)
    invite = accounts.create_invite(current_user, body.role, body.expires_in)
    return schemas.Invite(
        id=invite.id,
        invite_code=invite.code,
        url=accounts.invite_url(invite.code, request.host_url),
        expires_at=invite.expires_at,
        role=invite.role,
    ).body(), 201


@bp.get(
    "/invites",
    openapi=operation(
        "listInvites",
        "The organization's pending invites, never their codes (admin)",
        "organization",
        {
            "200": response("The invites not used yet nor expired.", ref(schemas.InviteList)),
            "401": E401,
            "403": E403_ADMIN,
        },
        security=READ,
    ),
)
@login_required
@admin_required
def invites() -> dict[str, Any]:
    """The organization's pending invites."""
    listed = accounts.list_invites(current_user)
    return schemas.InviteList(
        invites=[schemas.PendingInvite.model_validate(i) for i in listed]
    ).body()


@bp.delete(
    "/invites/<id:invite_id>",
    openapi=operation(
        "revokeInvite",
        "Revoke a pending invite: its link and code stop working (admin)",
        "organization",
        {
            "204": response("Revoked."),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ADMIN,
            "404": error("no such pending invite in the organization.", "not_found"),
        },
        security=WRITE,
        parameters=[INVITE_ID],
    ),
)
@login_required
@admin_required
def revoke_invite(invite_id: int) -> tuple[str, int]:
    """Revoke a pending invite."""
    accounts.revoke_invite(current_user, invite_id)
    return "", 204


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
        responses["409"] = error(
            "an admin cannot deactivate themselves, nor the organization's last active admin.",
            "cannot_deactivate_self",
            "last_admin",
        )
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


@bp.patch(
    "/users/<id:user_id>",
    openapi=operation(
        "changeUserRole",
        "Make a user an admin or a member (admin)",
        "organization",
        {
            "200": response("The user as they now are.", ref(schemas.User)),
            "400": error(
                "the body is not a JSON object of the fields (`role` admin or member), or a "
                "session write lacks its CSRF token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "403": E403_ADMIN,
            "404": error("no such user in the organization.", "not_found"),
            "409": error(
                "the user is the organization's last active admin (the caller included).",
                "last_admin",
            ),
            "413": E413_JSON,
        },
        security=WRITE,
        parameters=[USER_ID],
        body=json_body(schemas.RoleChangeRequest),
        description="An admin may demote themselves when another active admin remains.",
    ),
)
@login_required
@admin_required
def change_role(user_id: int) -> dict[str, Any]:
    """Make a user an admin or a member."""
    body = parse_body(schemas.RoleChangeRequest)
    user = accounts.set_role(current_user, user_id, body.role)
    return schemas.User.model_validate(user).body()


@bp.post(
    "/users/<id:user_id>/password-reset",
    openapi=operation(
        "createPasswordReset",
        "Issue a one-time link for a user to set a new password (admin)",
        "organization",
        {
            "201": response("The link, shown once.", ref(schemas.IssuedPasswordReset)),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ADMIN,
            "404": error("no such user in the organization.", "not_found"),
        },
        security=WRITE,
        parameters=[USER_ID],
        description="The link works once, for 24 hours; a newer link of the same user "
        "replaces it. Setting a password by it ends every session of the user.",
    ),
)
@login_required
@admin_required
def create_password_reset(user_id: int) -> tuple[dict[str, Any], int]:
    """Issue a one-time password reset link for a user."""
    issued = passwords.create_reset(current_user, user_id)
    return schemas.IssuedPasswordReset(
        user_id=issued.user_id,
        url=passwords.reset_url(issued.code, request.host_url),
        expires_at=issued.expires_at,
    ).body(), 201
