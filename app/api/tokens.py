"""API token endpoints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_login import current_user, login_required

from .. import schemas
from ..services import tokens
from .inputs import parse_body

bp = Blueprint("tokens", __name__, url_prefix="/api/tokens")


@bp.post("")
@login_required
def create() -> tuple[dict[str, Any], int]:
    """Issue a token; its secret is in this answer only."""
    body = parse_body(schemas.TokenRequest)
    issued = tokens.create_token(current_user, body.name)
    token = issued.token
    return schemas.IssuedToken(
        id=token.id,
        name=token.name,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        token=issued.secret,
    ).body(), 201


@bp.get("")
@login_required
def index() -> dict[str, Any]:
    """The caller's tokens, never their secrets."""
    listed = [schemas.Token.model_validate(t) for t in tokens.list_tokens(current_user)]
    return schemas.TokenList(tokens=listed).body()


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete("/<id:token_id>")
@login_required
def revoke(token_id: int) -> tuple[str, int]:
    """Revoke a token at once."""
    tokens.revoke_token(current_user, token_id)
    return "", 204
