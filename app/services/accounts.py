"""Accounts: registration, login checks, invites, roles and (de)activation of users."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..database import write_transaction
from ..extensions import db
from ..files import policy
from ..models import (
    MAX_NAME_KEY_LENGTH,
    Invite,
    Organization,
    Role,
    User,
    name_key_of,
    name_skeleton_hash_of,
    utcnow,
)
from ..models import (
    MAX_ORG_NAME_LENGTH as MAX_ORG_NAME_LENGTH,  # the rule, also read by the API schemas
)
from ..security import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_LENGTH,
    check_password,
    digest,
    hash_password,
    is_common_password,
    new_secret,
)
from . import activity
from .errors import (
    AccountDisabled,
    Conflict,
    InvalidCredentials,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from .tenancy import get_scoped_or_404, in_organization, lock_organization, scoped

# Deliberately simple: one @, no spaces, a dot in the domain. Delivery is the real test.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254


def normalize_email(raw: str) -> str:
    """The stored form of an email: trimmed and lower-cased; InvalidInput when it is not one."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_RE.match(email):
        raise InvalidInput("invalid_email", "email is not a valid address", field="email")
    return email


def validate_password(password: str, field: str = "password") -> None:
    """Enforce the password rules wherever a password is set: at least 10 characters
    and not one of the 10,000 most common (400 weak_password), at most 72 bytes in UTF-8
    (400 invalid_password); `field` names the input the password came in."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "weak_password",
            f"password must be at least {MIN_PASSWORD_LENGTH} characters",
            field=field,
        )
    if is_common_password(password):
        raise InvalidInput(
            "weak_password",
            "password is one of the 10,000 most common passwords; choose another",
            field=field,
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(
            "invalid_password",
            f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8",
            field=field,
        )


def validate_organization_name(name: str, label: str = "organization_name") -> None:
    """Enforce the organization name's length, and its compared form's; `label` names it."""
    if len(name) > MAX_ORG_NAME_LENGTH:
        raise InvalidInput(
            "invalid_field",
            f"{label} must be at most {MAX_ORG_NAME_LENGTH} characters",
            field="organization_name",
        )
    # A few characters expand many times under NFKC (U+FDFA into 18): the compared form
    # must fit its column too, or the insert fails on PostgreSQL.
    if len(name_key_of(name)) > MAX_NAME_KEY_LENGTH:
        raise InvalidInput(
            "invalid_field",
            f"{label} is too long once normalized for comparison (NFKC, case-folded): "
            f"at most {MAX_NAME_KEY_LENGTH} characters",
            field="organization_name",
        )


def find_organization(name: str) -> Organization | None:
    """The organization with this name, compared as the unique index compares names."""
    return db.session.scalars(
        select(Organization).where(Organization.name_key == name_key_of(name))
    ).first()


def find_lookalike(name: str) -> Organization | None:
    """An organization whose name looks like this one (the same confusable skeleton)."""
    return db.session.scalars(
        select(Organization).where(Organization.name_skeleton == name_skeleton_hash_of(name))
    ).first()


def find_user(email: str) -> User | None:
    """The user with this email, compared case-insensitively (as stored: lower-cased)."""
    return db.session.scalars(select(User).where(User.email == email.strip().lower())).first()


def email_taken(email: str) -> bool:
    """Whether a user already has this (normalised) email."""
    return db.session.scalar(select(User.id).where(User.email == email)) is not None


class EmailTaken(Conflict):
    """A user already has this email."""

    def __init__(self, email: str) -> None:
        super().__init__("email_taken", "an account with this email already exists")
        self.email = email


class NameTaken(Conflict):
    """An organization has this name, or one this name looks like (the same confusable
    skeleton); `organization` is that one."""

    def __init__(self, name: str, organization: Organization, *, lookalike: bool) -> None:
        message = f"an organization named {organization.name!r} already exists"
        if lookalike:
            message += f", and {name!r} looks like it"
        super().__init__("organization_exists", message)
        self.organization = organization
        self.lookalike = lookalike


@dataclass(frozen=True)
class Credentials:
    """A new user's normalised email and password hash, checked by the rules."""

    email: str
    password_hash: str


def new_credentials(email: str, password: str) -> Credentials:
    """Check a new user's email and password by the rules and hash the password.

    Slow (bcrypt): call it before taking the write lock.
    """
    email = normalize_email(email)
    validate_password(password)
    return Credentials(email=email, password_hash=hash_password(password))


def add_user(credentials: Credentials, organization: Organization, role: Role) -> User:
    """Add an active user to the caller's write transaction; EmailTaken when the email is."""
    if email_taken(credentials.email):
        raise EmailTaken(credentials.email)
    user = User(
        email=credentials.email,
        password_hash=credentials.password_hash,
        organization=organization,
        role=role,
    )
    db.session.add(user)
    return user


def add_organization(name: str, quota_mb: int | None = None) -> Organization:
    """Add an organization to the caller's write transaction; its quota defaults to
    STORAGE_QUOTA_MB. NameTaken when an organization has the name or one it looks like.

    The name is checked first by validate_organization_name (before the write lock).
    """
    existing = find_organization(name)
    if existing is not None:
        raise NameTaken(name, existing, lookalike=False)
    # One organization must not pass for another: the skeletons are unique too (their
    # index came with migration 0010).
    lookalike = find_lookalike(name)
    if lookalike is not None:
        raise NameTaken(name, lookalike, lookalike=True)
    if quota_mb is None:
        quota_mb = int(current_app.config["STORAGE_QUOTA_MB"])
    org = Organization(name=name, storage_quota_mb=quota_mb)
    db.session.add(org)
    return org


def register(email: str, password: str, organization_name: str, invite_code: str | None) -> User:
    """Create a user, and the organization when its name is new; returns the user."""
    credentials = new_credentials(email, password)
    validate_organization_name(organization_name)
    try:
        return _create_account(credentials, organization_name, invite_code)
    except IntegrityError:
        # A concurrent registration took the email or created the organization after
        # this one looked; looking again gives the answer it would have had in turn.
        pass
    try:
        return _create_account(credentials, organization_name, invite_code)
    except IntegrityError:
        raise Conflict("conflict", "the email or organization was just taken; try again") from None


def _create_account(
    credentials: Credentials, organization_name: str, invite_code: str | None
) -> User:
    """The registration's one write transaction: the user, and the organization if new."""
    with write_transaction() as session:
        # Looked at before the organization: a taken email is the answer even when the
        # organization's name would be refused as well.
        if email_taken(credentials.email):
            raise EmailTaken(credentials.email)
        org = find_organization(organization_name)
        if org is None:
            try:
                org = add_organization(organization_name)
            except NameTaken as taken:
                # Refused like a taken name: one organization must not pass for another.
                # Its people join it by its own name.
                raise Conflict(
                    "invite_required",
                    f"an organization named {taken.organization.name!r} exists, which this "
                    "name looks like; joining it needs its name and an invite code from its "
                    "admin",
                ) from None
            if invite_code:
                # After the lookalike check, whose answer comes first; raising rolls the
                # new organization back.
                raise InvalidInput("invite_invalid", "the invite code is not valid")
            role = Role.ADMIN
        else:
            role = Role.MEMBER
            if invite_code:
                role = _redeem_invite(org.id, invite_code)
            elif not current_app.config["OPEN_JOIN"]:
                raise Conflict(
                    "invite_required",
                    "this organization exists; joining it needs an invite code from its admin",
                )
        user = add_user(credentials, org, role)
        session.flush()
        if invite_code:
            _mark_invite_user(invite_code, user.id)
        joined(user)
    return user


def _redeem_invite(organization_id: int, code: str) -> Role:
    """Use up an invite of this organization atomically and return the role it gives, or
    InvalidInput invite_invalid."""
    now = utcnow()
    # One conditional UPDATE: of two registrations with one code, only one finds it unused.
    role = db.session.scalar(
        update(Invite)
        .where(
            Invite.code_hash == digest(code),
            in_organization(Invite, organization_id),
            Invite.used_at.is_(None),
            Invite.expires_at > now,
        )
        .values(used_at=now)
        .returning(Invite.role)
    )
    if role is None:
        raise InvalidInput("invite_invalid", "the invite code is not valid, used or expired")
    return Role(role)


def pending_invite(code: str) -> Invite | None:
    """The unused, unexpired invite with this code, with its organization, or None."""
    return db.session.scalars(
        select(Invite).where(
            Invite.code_hash == digest(code),
            Invite.used_at.is_(None),
            Invite.expires_at > utcnow(),
        )
    ).first()


def organization_of(invite: Invite) -> Organization:
    """The organization an invite joins."""
    organization = db.session.get(Organization, invite.organization_id)
    assert organization is not None  # the invite's row cascades with it
    return organization


def join(email: str, password: str, code: str) -> User:
    """Sign up into the organization of an invite, with the invite's role (the invite link's
    page: the organization is the invite's, never typed)."""
    credentials = new_credentials(email, password)
    try:
        with write_transaction() as session:
            # The invite first: an invalid one says nothing of which emails are taken.
            invite = pending_invite(code)
            if invite is None:
                raise InvalidInput(
                    "invite_invalid", "this invite link is not valid, used or expired"
                )
            if email_taken(credentials.email):
                raise EmailTaken(credentials.email)
            organization = organization_of(invite)
            role = _redeem_invite(invite.organization_id, code)
            user = add_user(credentials, organization, role)
            session.flush()
            _mark_invite_user(code, user.id)
            joined(user)
    except IntegrityError:
        # A concurrent registration took the email after this one looked.
        raise EmailTaken(credentials.email) from None
    return user


def joined(user: User) -> None:
    """Record a new user's arrival in their organization (in its write transaction)."""
    target = activity.Target("user", str(user.id), user.email)
    activity.record("member.joined", user.organization_id, activity.by_user(user), target)


def _mark_invite_user(code: str, user_id: int) -> None:
    """Record who used an invite."""
    db.session.execute(
        update(Invite).where(Invite.code_hash == digest(code)).values(used_by=user_id)
    )


def authenticate(email: str, password: str) -> User:
    """The user with these credentials; the same error for unknown email and wrong password."""
    user = find_user(email)
    # The hash is checked even for an unknown email, so both answers take as long.
    password_ok = check_password(password, user.password_hash if user else None)
    if user is None:
        # No organization to record it in: the login limits and the logs see it.
        raise InvalidCredentials("invalid_credentials", "invalid email or password")
    actor = activity.by_user(user)
    target = activity.Target("user", str(user.id), user.email)
    if not password_ok or not user.is_active:
        activity.record_now("auth.login_failed", user.organization_id, actor, target)
        if not password_ok:
            raise InvalidCredentials("invalid_credentials", "invalid email or password")
        raise AccountDisabled("account_disabled", "this account has been disabled")
    activity.record_now("auth.login", user.organization_id, actor, target)
    return user


@cache
def _user_with_organization() -> Select[User]:
    """The user by id with its organization, in one query: most requests read it (tenancy,
    /me)."""
    # Built once: building the statement and its options anew on every request costs
    # more than running it.
    return (
        select(User).options(joinedload(User.organization)).where(User.id == bindparam("user_id"))
    )


def load_active_user(user_id: int) -> User | None:
    """The user for a session, or None when missing or deactivated."""
    user = db.session.scalars(_user_with_organization(), {"user_id": user_id}).first()
    if user is None or not user.is_active:
        return None
    return user


# The lifetimes an admin may give an invite, in seconds (the default: INVITE_TTL_HOURS).
MIN_INVITE_EXPIRES_IN = 60
MAX_INVITE_EXPIRES_IN = 30 * 24 * 3600


@dataclass(frozen=True)
class IssuedInvite:
    """A new invite; the code exists only here, the database keeps its hash."""

    id: int
    code: str
    expires_at: datetime
    role: Role


def create_invite(
    user: User, role: Role = Role.MEMBER, expires_in: int | None = None
) -> IssuedInvite:
    """Issue a single-use invite to the user's organization, for someone to join with
    `role`; admins only."""
    policy.require_admin(user)
    return new_invite(
        user.organization_id,
        created_by=user.id,
        role=role,
        expires_in=expires_in,
        actor=activity.acting(user),
    )


def new_invite(
    organization_id: int,
    created_by: int | None,
    role: Role = Role.MEMBER,
    expires_in: int | None = None,
    actor: activity.Actor = activity.SYSTEM,
) -> IssuedInvite:
    """Issue a single-use invite to an organization, asking no one's permission: the
    caller decided (create_invite for an admin, or the operator: `created_by` None).
    It expires after `expires_in` seconds, INVITE_TTL_HOURS when None."""
    code = new_secret()
    lifetime = (
        timedelta(hours=current_app.config["INVITE_TTL_HOURS"])
        if expires_in is None
        else timedelta(seconds=expires_in)
    )
    expires_at = utcnow() + lifetime
    invite = Invite(
        organization_id=organization_id,
        code_hash=digest(code),
        created_by=created_by,
        expires_at=expires_at,
        role=role,
    )
    with write_transaction() as session:
        session.add(invite)
        session.flush()  # its id, for the record
        activity.record(
            "member.invited",
            organization_id,
            actor,
            activity.Target("invite", str(invite.id), f"invite as {role}"),
        )
    return IssuedInvite(id=invite.id, code=code, expires_at=expires_at, role=role)


def invite_url(code: str, request_base: str) -> str:
    """An invite's absolute page: under PUBLIC_URL, else under the request's scheme and host."""
    base = current_app.config["PUBLIC_URL"] or request_base.rstrip("/")
    return f"{base}/join/{code}"


@dataclass(frozen=True)
class PendingInvite:
    """An invite not yet used nor expired, as an admin sees it (never its code)."""

    id: int
    role: Role
    created_at: datetime
    expires_at: datetime
    created_by_email: str | None


def list_invites(admin: User) -> list[PendingInvite]:
    """The organization's invites still waiting to be used, oldest first; admins only."""
    policy.require_admin(admin)
    rows = db.session.execute(
        select(Invite, User.email)
        .outerjoin(User, User.id == Invite.created_by)
        .where(
            in_organization(Invite, admin.organization_id),
            Invite.used_at.is_(None),
            Invite.expires_at > utcnow(),
        )
        .order_by(Invite.id)
    ).all()
    return [
        PendingInvite(
            id=invite.id,
            role=Role(invite.role),
            created_at=invite.created_at,
            expires_at=invite.expires_at,
            created_by_email=email,
        )
        for invite, email in rows
    ]


def revoke_invite(admin: User, invite_id: int) -> None:
    """Delete an invite that was not used yet, so its link no longer works; NotFound for a
    used one or another organization's; admins only."""
    policy.require_admin(admin)
    with write_transaction() as session:
        invite = get_scoped_or_404(
            Invite, invite_id, admin.organization_id, what="invite", for_update=True
        )
        if invite.used_at is not None:
            # Kept: it records who joined by it. It no longer admits anyone anyway.
            raise NotFound("not_found", "invite not found")
        session.delete(invite)
        activity.record(
            "invite.revoked",
            admin.organization_id,
            activity.acting(admin),
            activity.Target("invite", str(invite.id), f"invite as {invite.role}"),
        )


def list_users(user: User) -> list[User]:
    """The users of the user's organization, oldest first; admins only."""
    policy.require_admin(user)
    return list(db.session.scalars(scoped(User, user.organization_id).order_by(User.id)))


def set_active(admin: User, user_id: int, active: bool) -> User:
    """Activate or deactivate a user of the admin's organization; NotFound for anyone else's,
    NotAllowed for a caller who is not an admin, Conflict last_admin for the last active
    admin."""
    policy.require_admin(admin)
    if not active and user_id == admin.id:
        # An organization must not lose its last way in by accident.
        raise Conflict("cannot_deactivate_self", "an admin cannot deactivate themselves")
    organization_id = admin.organization_id
    with write_transaction():
        user = admin_change(admin, user_id)
        if not active and user.is_active and user.is_admin:
            keep_an_admin(organization_id)
        if user.is_active != active:
            activity.record(
                "member.activated" if active else "member.deactivated",
                organization_id,
                activity.acting(admin),
                activity.Target("user", str(user.id), user.email),
            )
        change_active(user, active)
    return user


def set_role(admin: User, user_id: int, role: Role) -> User:
    """Make a user of the admin's organization an admin or a member; NotFound for anyone
    else's, NotAllowed for a caller who is not an admin, Conflict last_admin when it would
    demote the last active admin (the caller themselves included)."""
    policy.require_admin(admin)
    with write_transaction():
        user = admin_change(admin, user_id)
        if user.role != role:
            activity.record(
                "member.role_changed",
                admin.organization_id,
                activity.acting(admin),
                activity.Target("user", str(user.id), f"{user.email} ({role})"),
            )
        change_role(user, role)
    return user


def admin_change(admin: User, user_id: int) -> User:
    """Inside a write transaction: hold the organization's admins still, check the caller is
    still one of them, and lock the user to change."""
    lock_organization(admin.organization_id)
    # Read again under the lock: a concurrent change may have demoted or deactivated the
    # caller since the request loaded them.
    db.session.refresh(admin)
    if not admin.is_active:
        raise NotAllowed("forbidden", policy.ADMIN_ONLY_MESSAGE)
    policy.require_admin(admin)
    return get_scoped_or_404(User, user_id, admin.organization_id, what="user", for_update=True)


def change_role(user: User, role: Role) -> None:
    """Set a user's role inside the caller's write transaction, after lock_organization;
    Conflict last_admin when it would demote the last active admin."""
    if user.is_admin and role != Role.ADMIN and user.is_active:
        keep_an_admin(user.organization_id)
    user.role = role


def active_admins(organization_id: int) -> int:
    """How many active admins the organization has."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(
                in_organization(User, organization_id),
                User.role == Role.ADMIN,
                User.is_active.is_(True),
            )
        )
        or 0
    )


def keep_an_admin(organization_id: int) -> None:
    """Refuse (Conflict last_admin) to take away one of the organization's active admins
    when it is the last; run under lock_organization, so two such changes take turns."""
    if active_admins(organization_id) <= 1:
        raise Conflict(
            "last_admin",
            "this is the organization's last active admin; make someone else an admin first",
        )


def change_active(user: User, active: bool) -> None:
    """Set whether a user is active, inside the caller's write transaction.

    Every deactivation raises the user's session generation as well, so the sessions
    they hold now stay void after a later reactivation.
    """
    if not active:
        # Raised in SQL, not from the value this transaction read, so a concurrent
        # deactivation cannot make two of them count as one.
        user.session_generation = User.session_generation + 1
    user.is_active = active
