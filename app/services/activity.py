"""The activity record: each event written in the transaction of the change it records, with
who acted (a user, an API token, a share link, an upload-only link or the system), from
which address, and on what; read newest first by admins, a file's own history by members,
exported as CSV, and kept ACTIVITY_RETENTION_DAYS."""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args

from flask import current_app, g, has_request_context, request
from sqlalchemy import Table, delete, insert, select

from ..database import write_transaction
from ..extensions import db
from ..files import access
from ..models import ActivityEvent, ActorKind, User, isoformat, utcnow
from .errors import InvalidInput, NotAllowed
from .tenancy import in_organization

log = logging.getLogger(__name__)

# Every event type, in the order the docs list them.
EventType = Literal[
    "auth.login",
    "auth.login_failed",
    "auth.logout",
    "auth.password_changed",
    "file.uploaded",
    "file.version_added",
    "file.failed",
    "file.downloaded",
    "file.renamed",
    "file.moved",
    "file.trashed",
    "file.restored",
    "file.deleted",
    "folder.created",
    "folder.renamed",
    "folder.moved",
    "folder.trashed",
    "folder.restored",
    "folder.deleted",
    "link.created",
    "link.revoked",
    "request.created",
    "request.revoked",
    "token.created",
    "token.revoked",
    "member.invited",
    "member.joined",
    "member.role_changed",
    "member.deactivated",
    "member.activated",
    "invite.revoked",
    "webhook.created",
    "webhook.deleted",
    "organization.changed",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
TargetKind = Literal[
    "file", "folder", "user", "token", "link", "request", "invite", "webhook", "organization"
]

# Events per page of the API, by default and at most; per batch of the retention sweep.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
PURGE_BATCH = 5000
# The longest `detail` kept (a failed file's reason is one sentence).
DETAIL_LENGTH = 255
# The characters a spreadsheet reads as the start of a formula: such a cell is prefixed
# with a quote in the CSV export, so a file named `=HYPERLINK(...)` stays text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "id",
    "type",
    "at",
    "actor_kind",
    "actor_id",
    "actor_email",
    "ip",
    "target_kind",
    "target_id",
    "target_name",
    "detail",
)


@dataclass(frozen=True)
class Actor:
    """Who acted: its kind, its id, and the user behind it (a token's owner)."""

    kind: ActorKind
    id: int | None = None
    user_id: int | None = None
    email: str | None = None


SYSTEM = Actor(ActorKind.SYSTEM)


def acting(user: User) -> Actor:
    """The actor of the current request by `user`: the API token it came with, or the user
    by session."""
    token_id = g.get("token_id") if has_request_context() else None
    if token_id is not None:
        return Actor(ActorKind.TOKEN, int(token_id), user.id, user.email)
    return Actor(ActorKind.USER, user.id, user.id, user.email)


def by_user(user: User) -> Actor:
    """A user acting in their own name, with no session or token yet (signing in or up, a
    reset link)."""
    return Actor(ActorKind.USER, user.id, user.id, user.email)


def by_link(link_id: int) -> Actor:
    """A share link's holder."""
    return Actor(ActorKind.LINK, link_id)


def by_request(request_id: int) -> Actor:
    """Someone sending files through an upload-only link."""
    return Actor(ActorKind.REQUEST, request_id)


@dataclass(frozen=True)
class Target:
    """What an event is about: its kind, id and name when it happened."""

    kind: TargetKind
    id: str | None
    name: str | None = None
    # The file the event concerns (its own history lists it).
    file_id: str | None = None


def on_file(file_id: str, name: str) -> Target:
    """A file as an event's target."""
    return Target("file", file_id, name, file_id)


def client_address() -> str | None:
    """The request's client address (the proxy's forwarded one where PROXY_COUNT trusts it);
    None outside a request."""
    return request.remote_addr if has_request_context() else None


_INSERT = insert(cast(Table, ActivityEvent.__table__))


def record(
    event_type: EventType,
    organization_id: int,
    actor: Actor,
    target: Target,
    *,
    ip: str | None = None,
    detail: str | None = None,
) -> None:
    """Write one event in the caller's open write transaction: it commits, or rolls back,
    with the change it records. `ip`: the client's address when not the current request's;
    `detail`: what else the event says (why a file failed)."""
    record_many(event_type, organization_id, actor, [target], ip=ip, detail=detail)


def record_many(
    event_type: EventType,
    organization_id: int,
    actor: Actor,
    targets: list[Target],
    *,
    ip: str | None = None,
    detail: str | None = None,
) -> None:
    """One event per target, alike but for it, in the caller's open write transaction and
    one statement (a purge's batch)."""
    if not targets:
        return
    at, ip = utcnow(), ip or client_address()
    rows = [
        {
            "organization_id": organization_id,
            "type": event_type,
            "at": at,
            "actor_kind": str(actor.kind),
            "actor_id": actor.id,
            "actor_user_id": actor.user_id,
            "actor_email": actor.email,
            "ip": ip,
            "target_kind": target.kind,
            "target_id": target.id,
            "target_name": target.name[:255] if target.name else target.name,
            "file_id": target.file_id,
            "detail": detail[:DETAIL_LENGTH] if detail else None,
        }
        for target in targets
    ]
    # One row as a plain execute: SQLAlchemy's executemany of one row costs more.
    db.session.execute(_INSERT, rows[0] if len(rows) == 1 else rows)


def record_now(
    event_type: EventType,
    organization_id: int,
    actor: Actor,
    target: Target,
    *,
    ip: str | None = None,
) -> None:
    """Write one event in a transaction of its own, for what has already happened (a
    download whose bytes were sent, a refused login)."""
    with write_transaction():
        record(event_type, organization_id, actor, target, ip=ip)


def download_recorder(organization_id: int, actor: Actor, target: Target) -> Callable[[], None]:
    """What records a download once its bytes have gone out: a function the server's close
    of the answer calls, after the request's context has gone (so it keeps the app and the
    client's address)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ip = client_address()

    def write() -> None:
        with app.app_context():
            try:
                record_now("file.downloaded", organization_id, actor, target, ip=ip)
            except Exception:
                log.exception("the download of file %s was not recorded", target.id)

    return write


# ---- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Which events a page or export holds; a cursor belongs to one set of these."""

    type: str | None = None
    actor_id: int | None = None
    file_id: str | None = None

    def fingerprint(self) -> str:
        """A short hash of the filters, carried by cursors made for them."""
        text = f"{self.type}|{self.actor_id}|{self.file_id}"
        return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Page:
    """One page of events, newest first."""

    events: list[ActivityEvent]
    next_cursor: str | None


def encode_cursor(last_id: int, filters: Filters) -> str:
    """An opaque cursor pointing just after the event `last_id` for these filters."""
    raw = f"a1:{last_id}:{filters.fingerprint()}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, filters: Filters) -> int:
    """The event id a cursor points after; 400 when it is not one of ours or was made for
    other filters."""
    invalid = InvalidInput("invalid_parameter", "cursor is not valid", field="cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, last_id, fingerprint = raw.split(":")
        if version != "a1":
            raise invalid
        if fingerprint != filters.fingerprint():
            raise InvalidInput(
                "invalid_parameter",
                "cursor was made for other parameters (type, actor_id, file_id)",
                field="cursor",
            )
        return int(last_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None


def _query(organization_id: int, filters: Filters) -> Any:
    """The organization's events matching the filters, newest first."""
    query = select(ActivityEvent).where(in_organization(ActivityEvent, organization_id))
    if filters.type is not None:
        query = query.where(ActivityEvent.type == filters.type)
    if filters.actor_id is not None:
        query = query.where(ActivityEvent.actor_user_id == filters.actor_id)
    if filters.file_id is not None:
        query = query.where(ActivityEvent.file_id == filters.file_id)
    return query.order_by(ActivityEvent.id.desc())


def page_of(
    organization_id: int, filters: Filters, *, limit: int = DEFAULT_LIMIT, cursor: str | None
) -> Page:
    """A page of the organization's events matching the filters."""
    query = _query(organization_id, filters)
    if cursor is not None:
        query = query.where(ActivityEvent.id < decode_cursor(cursor, filters))
    rows = list(db.session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id, filters) if more and rows else None)


def organization_events(
    user: User, filters: Filters, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """The organization's record (admins only)."""
    if not user.is_admin:
        raise NotAllowed("forbidden", "only an admin can read the organization's activity")
    return page_of(user.organization_id, filters, limit=limit, cursor=cursor)


def file_history(
    user: User, raw_file_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> tuple[Filters, Page]:
    """A file's own events, for any member of its organization (404 as its details)."""
    row = access.get_file(user.organization_id, raw_file_id)
    filters = Filters(file_id=row.id)
    return filters, page_of(user.organization_id, filters, limit=limit, cursor=cursor)


def event_json(event: ActivityEvent) -> dict[str, Any]:
    """An event as the API answers it."""
    return {
        "id": event.id,
        "type": event.type,
        "at": isoformat(event.at),
        "actor": {"kind": event.actor_kind, "id": event.actor_id, "email": event.actor_email},
        "ip": event.ip,
        "target": {"kind": event.target_kind, "id": event.target_id, "name": event.target_name},
        "detail": event.detail,
    }


def csv_cell(value: object) -> str:
    """A value as a CSV cell a spreadsheet shows as text."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def export_csv(organization_id: int, filters: Filters) -> Iterator[str]:
    """Every matching event as CSV, newest first, a page at a time (a header row first)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    cursor: str | None = None
    while True:
        page = page_of(organization_id, filters, limit=MAX_LIMIT, cursor=cursor)
        # Each page in its own short read: a long export holds no connection between pages.
        db.session.rollback()
        out = io.StringIO()
        writer = csv.writer(out)
        for event in page.events:
            writer.writerow(
                [
                    csv_cell(value)
                    for value in (
                        event.id,
                        event.type,
                        isoformat(event.at),
                        event.actor_kind,
                        event.actor_id,
                        event.actor_email,
                        event.ip,
                        event.target_kind,
                        event.target_id,
                        event.target_name,
                        event.detail,
                    )
                ]
            )
        yield out.getvalue()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# ---- retention -----------------------------------------------------------------------


def purge_expired(now: datetime | None = None) -> int:
    """Delete the events older than ACTIVITY_RETENTION_DAYS, every organization's, in short
    batches; returns how many."""
    days = int(current_app.config["ACTIVITY_RETENTION_DAYS"])
    cutoff = (now or utcnow()) - timedelta(days=days)
    removed = 0
    while True:
        with write_transaction() as session:
            # Cross-tenant on purpose: the operator's retention, for every organization.
            batch = select(ActivityEvent.id).where(ActivityEvent.at < cutoff).limit(PURGE_BATCH)
            count = session.execute(
                delete(ActivityEvent)
                .where(ActivityEvent.id.in_(batch))
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
        removed += int(count or 0)
        if count < PURGE_BATCH:
            return removed
