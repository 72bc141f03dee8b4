"""API token endpoints."""

from __future__ import annotations

from typing import Any

from flask_login import current_user, login_required

from .. import schemas
from ..models import TokenAccess
from ..services import tokens
from .contract import (
    E400_WRITE,
    E401,
    E413_JSON,
    JSON_BODY_CODES,
    READ,
    TOKEN_ID,
    WRITE,
    DocumentedBlueprint,
    error,
    json_body,
    link,
    operation,
    ref,
    response,
    with_links,
)
from .inputs import parse_body

bp = DocumentedBlueprint("tokens", __name__, url_prefix="/api/tokens")


@bp.post(
    "",
    openapi=operation(
        "createToken",
        "Issue an API token",
        "tokens",
        {
            "201": with_links(
                response("The token with its secret, shown once.", ref(schemas.IssuedToken)),
                RevokeToken=link("revokeToken", token_id="$response.body#/id"),
            ),
            "400": error(
                "the body is not a JSON object of the fields (`access` read or write, "
                f"`expires_in` {tokens.MIN_EXPIRES_IN} to {tokens.MAX_EXPIRES_IN}), or a "
                "session write lacks its CSRF token.",
                *JSON_BODY_CODES,
                "csrf_failed",
            ),
            "401": E401,
            "413": E413_JSON,
        },
        security=WRITE,
        body=json_body(schemas.TokenRequest),
    ),
)
@login_required
def create() -> tuple[dict[str, Any], int]:
    """Issue a token; its secret is in this answer only."""
    body = parse_body(schemas.TokenRequest)
    issued = tokens.create_token(current_user, body.name, body.access, body.expires_in)
    token = issued.token
    return schemas.IssuedToken(
        id=token.id,
        name=token.name,
        access=TokenAccess(token.access),
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token.expires_at,
        token=issued.secret,
    ).body(), 201


@bp.get(
    "",
    openapi=operation(
        "listTokens",
        "The caller's tokens, never their secrets",
        "tokens",
        {"200": response("The tokens.", ref(schemas.TokenList)), "401": E401},
        security=READ,
    ),
)
@login_required
def index() -> dict[str, Any]:
    """The caller's tokens, never their secrets."""
    listed = [schemas.Token.model_validate(t) for t in tokens.list_tokens(current_user)]
    return schemas.TokenList(tokens=listed).body()


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete(
    "/<id:token_id>",
    openapi=operation(
        "revokeToken",
        "Revoke a token at once",
        "tokens",
        {
            "204": response("Revoked."),
            "400": E400_WRITE,
            "401": E401,
            "404": error("not one of the caller's tokens.", "not_found"),
        },
        security=WRITE,
        parameters=[TOKEN_ID],
    ),
)
@login_required
def revoke(token_id: int) -> tuple[str, int]:
    """Revoke a token at once."""
    tokens.revoke_token(current_user, token_id)
    return "", 204
