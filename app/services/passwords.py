"""Passwords: a user changes their own, an admin issues a one-time reset link, the operator
sets one. Every new password ends the user's sessions (the caller's own excepted when it
changes its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from ..database import write_transaction
from ..extensions import db
from ..files import policy
from ..models import PasswordReset, User, utcnow
from ..security import check_password, digest, hash_password, new_secret
from . import activity
from .accounts import validate_password
from .errors import InvalidInput
from .tenancy import get_scoped_or_404, in_organization

# How long a reset link works.
RESET_LIFETIME = timedelta(hours=24)


def set_password_of(user: User, password_hash: str, actor: activity.Actor) -> None:
    """Give a user a new password inside the caller's write transaction; every session
    they hold ends (their session generation is raised, in SQL, as a deactivation does)."""
    user.password_hash = password_hash
    user.session_generation = User.session_generation + 1
    activity.record(
        "auth.password_changed",
        user.organization_id,
        actor,
        activity.Target("user", str(user.id), user.email),
    )


def change_password(user: User, current_password: str, new_password: str) -> None:
    """The user's own change: the current password must be right (400 wrong_password), the
    new one follows the password rules. Every session of the user ends: the caller keeps
    theirs by recording the new session generation (app/authentication.py)."""
    if not check_password(current_password, user.password_hash):
        raise InvalidInput(
            "wrong_password", "the current password is not right", field="current_password"
        )
    validate_password(new_password, field="new_password")
    password_hash = hash_password(new_password)  # slow: before the write lock
    with write_transaction():
        set_password_of(user, password_hash, activity.acting(user))
    db.session.refresh(user)


@dataclass(frozen=True)
class IssuedReset:
    """A new reset link's code, which exists only here (the database keeps its hash)."""

    code: str
    expires_at: datetime
    user_id: int
    email: str


def create_reset(admin: User, user_id: int) -> IssuedReset:
    """Issue a one-time link for a user of the admin's organization to set a new password;
    an earlier unused link of that user stops working. Admins only; NotFound for a user of
    another organization."""
    policy.require_admin(admin)
    code = new_secret()
    expires_at = utcnow() + RESET_LIFETIME
    with write_transaction() as session:
        user = get_scoped_or_404(User, user_id, admin.organization_id, what="user")
        session.execute(
            delete(PasswordReset).where(
                PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
            )
        )
        session.add(
            PasswordReset(
                organization_id=admin.organization_id,
                user_id=user.id,
                code_hash=digest(code),
                created_by=admin.id,
                expires_at=expires_at,
            )
        )
    return IssuedReset(code=code, expires_at=expires_at, user_id=user_id, email=user.email)


def reset_url(code: str, request_base: str) -> str:
    """A reset link's absolute page: under PUBLIC_URL, else under the request's scheme and
    host."""
    base = current_app.config["PUBLIC_URL"] or request_base.rstrip("/")
    return f"{base}/reset/{code}"


def pending_reset(code: str) -> PasswordReset | None:
    """The unused, unexpired reset link with this code, with its user, or None."""
    reset = db.session.scalars(
        select(PasswordReset).where(
            PasswordReset.code_hash == digest(code),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > utcnow(),
        )
    ).first()
    return reset


def reset_password(code: str, new_password: str) -> User:
    """Set a new password by a reset link, which then no longer works; every session of its
    user ends. InvalidInput reset_invalid for a link used, expired or unknown."""
    validate_password(new_password)
    password_hash = hash_password(new_password)
    with write_transaction() as session:
        # One conditional UPDATE: of two uses of one link, only one finds it unused.
        found = session.execute(
            update(PasswordReset)
            .where(
                PasswordReset.code_hash == digest(code),
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > utcnow(),
            )
            .values(used_at=utcnow())
            .returning(PasswordReset.user_id, PasswordReset.organization_id)
        ).first()
        if found is None:
            raise InvalidInput("reset_invalid", "this reset link is not valid, used or expired")
        user_id, organization_id = found
        user: User = db.session.scalars(
            select(User).where(in_organization(User, organization_id), User.id == user_id)
        ).one()
        # By the reset link: the user themselves, who has no session yet.
        set_password_of(user, password_hash, activity.by_user(user))
    return user


def set_password(user: User, new_password: str) -> None:
    """The operator's setting of a user's password (manage.py), by the password rules; every
    session of the user ends."""
    validate_password(new_password)
    password_hash = hash_password(new_password)
    with write_transaction():
        set_password_of(user, password_hash, activity.SYSTEM)
