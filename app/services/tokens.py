"""API tokens: issued once, stored as a hash, revocable at once; `read` or `write` access,
and an expiry if asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import joinedload

from ..database import write_transaction
from ..extensions import db
from ..models import MAX_TOKEN_NAME_LENGTH as MAX_TOKEN_NAME_LENGTH  # the rule, re-exported
from ..models import ApiToken, TokenAccess, User, utcnow
from ..security import digest, new_secret
from . import activity
from .errors import NotFound

TOKEN_PREFIX = "coffer_"
# last_used_at is refreshed at most this often, so reads do not all become writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# The lifetimes a token may be given, in seconds; without one it works until revoked.
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 365 * 24 * 3600


@dataclass(frozen=True)
class IssuedToken:
    """A new token with its secret, which is shown this once."""

    token: ApiToken
    secret: str


def create_token(
    user: User,
    name: str,
    access: TokenAccess = TokenAccess.WRITE,
    expires_in: int | None = None,
) -> IssuedToken:
    """Issue a token for the user, with `access`, expiring after `expires_in` seconds (never
    when None)."""
    secret = new_secret(TOKEN_PREFIX)
    expires_at = None if expires_in is None else utcnow() + timedelta(seconds=expires_in)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=digest(secret),
        access=access,
        expires_at=expires_at,
    )
    with write_transaction() as session:
        session.add(token)
        session.flush()  # its id, for the record
        activity.record(
            "token.created",
            user.organization_id,
            activity.acting(user),
            activity.Target("token", str(token.id), name),
        )
    return IssuedToken(token=token, secret=secret)


def list_tokens(user: User) -> list[ApiToken]:
    """The user's tokens, oldest first."""
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        )
    )


def revoke_token(user: User, token_id: int) -> None:
    """Delete one of the user's tokens; NotFound for any other."""
    with write_transaction() as session:
        token = session.scalars(
            select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
        ).first()
        if token is None:
            raise NotFound("not_found", "token not found")
        session.delete(token)
        activity.record(
            "token.revoked",
            user.organization_id,
            activity.acting(user),
            activity.Target("token", str(token.id), token.name),
        )


@cache
def _token_with_user() -> Select[ApiToken]:
    """The token by its hash, with its user and the user's organization, in one query."""
    # Built once: building the statement and its options anew on every request costs
    # more than running it.
    return (
        select(ApiToken)
        .where(ApiToken.token_hash == bindparam("token_hash"))
        .options(joinedload(ApiToken.user).joinedload(User.organization))
    )


def token_for_secret(secret: str) -> ApiToken | None:
    """The token a bearer secret is, with its active user; None when there is none, its
    user is deactivated or it has expired."""
    token = db.session.scalars(_token_with_user(), {"token_hash": digest(secret)}).first()
    if token is None or not token.user.is_active:
        return None
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        with write_transaction() as session:
            session.execute(
                update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
            )
    return token
