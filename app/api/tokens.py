"""API token endpoints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_login import current_user, login_required

from ..models import ApiToken, isoformat
from ..services import tokens
from .inputs import json_body, string_field

bp = Blueprint("tokens", __name__, url_prefix="/api/tokens")


def token_summary(token: ApiToken) -> dict[str, Any]:
    """A token without its secret."""
    return {
        "id": token.id,
        "name": token.name,
        "created_at": isoformat(token.created_at),
        "last_used_at": isoformat(token.last_used_at),
    }


@bp.post("")
@login_required
def create() -> tuple[dict[str, Any], int]:
    """Issue a token; its secret is in this answer only."""
    name = string_field(json_body(), "name", max_length=100)
    issued = tokens.create_token(current_user, name)  # type: ignore[arg-type]
    return {**token_summary(issued.token), "token": issued.secret}, 201


@bp.get("")
@login_required
def index() -> dict[str, Any]:
    """The caller's tokens, never their secrets."""
    return {"tokens": [token_summary(t) for t in tokens.list_tokens(current_user)]}


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete("/<int(max=2147483647):token_id>")
@login_required
def revoke(token_id: int) -> tuple[str, int]:
    """Revoke a token at once."""
    tokens.revoke_token(current_user, token_id)
    return "", 204
