"""Operator actions behind `manage.py`: organizations, users (their roles and passwords),
quotas, invites, seed data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..database import write_transaction
from ..models import Organization, Role, User
from . import accounts, passwords
from .errors import Conflict, InvalidInput, NotAllowed, NotFound
from .tenancy import lock_organization

SEED_ORGANIZATION = "Acme Corp"
SEED_ADMIN_EMAIL = "admin@acme.test"


def get_organization(name: str) -> Organization:
    """The organization with this name (case-insensitive), or NotFound."""
    org = accounts.find_organization(name.strip())
    if org is None:
        raise NotFound("not_found", f"no organization named {name!r}")
    return org


def get_user(email: str) -> User:
    """The user with this email (case-insensitive), or NotFound."""
    user = accounts.find_user(email)
    if user is None:
        raise NotFound("not_found", f"no user with email {email!r}")
    return user


def create_organization(name: str, quota_mb: int | None = None) -> Organization:
    """Create an organization; its quota defaults to STORAGE_QUOTA_MB."""
    name = name.strip()
    if not name:
        raise InvalidInput("missing_field", "the organization name is empty")
    accounts.validate_organization_name(name, label="the organization name")
    if quota_mb is None:
        quota_mb = int(current_app.config["STORAGE_QUOTA_MB"])
    _check_quota(quota_mb)
    try:
        with write_transaction():
            org = accounts.add_organization(name, quota_mb)
    except IntegrityError:
        raise Conflict(
            "organization_exists", f"an organization named {name!r} was just created"
        ) from None
    return org


def create_user(email: str, password: str, organization_name: str, admin: bool = False) -> User:
    """Create an active user in an existing organization, by the registration rules."""
    credentials = accounts.new_credentials(email, password)
    org = get_organization(organization_name)
    email = credentials.email
    try:
        with write_transaction():
            user = accounts.add_user(credentials, org, Role.ADMIN if admin else Role.MEMBER)
    except accounts.EmailTaken:
        # The operator is told which address: they typed it.
        raise Conflict("email_taken", f"a user with email {email!r} already exists") from None
    except IntegrityError:
        raise Conflict("email_taken", f"a user with email {email!r} was just created") from None
    return user


def set_user_active(email: str, active: bool) -> tuple[User, bool]:
    """Activate or deactivate a user; returns the user and whether anything changed.

    A deactivated user's sessions and tokens stop working on their next request, since
    every request loads only active users; their sessions stay void after reactivation.
    """
    with write_transaction():
        user = get_user(email)
        changed = user.is_active != active
        accounts.change_active(user, active)
    return user, changed


def set_user_role(email: str, role: Role) -> tuple[User, bool]:
    """Make a user an admin or a member; returns the user and whether anything changed.

    As in the organization itself, the last active admin is not demoted (Conflict
    last_admin): the operator promotes another first.
    """
    with write_transaction() as session:
        user = get_user(email)
        lock_organization(user.organization_id)
        session.refresh(user)
        changed = user.role != role
        accounts.change_role(user, role)
    return user, changed


def set_user_password(email: str, password: str) -> User:
    """Set a user's password by the password rules; every session of theirs ends."""
    user = get_user(email)
    passwords.set_password(user, password)
    return user


def set_quota(organization_name: str, quota_mb: int) -> Organization:
    """Set an organization's storage quota in MiB."""
    _check_quota(quota_mb)
    with write_transaction():
        org = get_organization(organization_name)
        org.storage_quota_mb = quota_mb
    return org


def _check_quota(quota_mb: int) -> None:
    """A quota is a number of MiB, zero or more."""
    if quota_mb < 0:
        raise InvalidInput("invalid_quota", "the quota cannot be negative")


def issue_invite(organization_name: str) -> accounts.IssuedInvite:
    """Issue a single-use invite to an organization, as its admin would.

    The operator acts for the deployment, not as a user of the organization, so no user's
    permission is asked: this calls the invite's maker below the admin-only create_invite.
    """
    org = get_organization(organization_name)
    return accounts.new_invite(org.id, created_by=None)


@dataclass(frozen=True)
class SeedResult:
    """What seed-data found or created; `password` is set only when one was generated."""

    organization: Organization
    admin: User
    organization_created: bool
    admin_created: bool
    password: str | None


def seed_data(email: str = SEED_ADMIN_EMAIL, password: str | None = None) -> SeedResult:
    """Development data: the "Acme Corp" organization and an admin; safe to run twice."""
    if current_app.config["APP_ENV"] == "production":
        raise NotAllowed(
            "development_only", "seed-data is for development only, and APP_ENV is production"
        )
    org = accounts.find_organization(SEED_ORGANIZATION)
    org_created = org is None
    if org is None:
        org = create_organization(SEED_ORGANIZATION)
    existing = accounts.find_user(email)
    if existing is not None:
        if existing.organization_id != org.id:
            raise Conflict("email_taken", f"{email!r} already belongs to another organization")
        return SeedResult(org, existing, org_created, False, None)
    generated = secrets.token_urlsafe(12) if password is None else None
    user = create_user(email, password or generated or "", org.name, admin=True)
    return SeedResult(org, user, org_created, True, generated)
