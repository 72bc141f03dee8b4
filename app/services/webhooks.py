"""Webhooks: an organization's endpoints, the file events sent to them, signed, and
every delivery attempt; URLs that lead inside the network are refused.

The deliveries themselves run as RQ jobs (jobs/webhooks.py, named here by dotted path).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from ..broker import get_webhook_queue
from ..database import write_transaction
from ..extensions import db
from ..files import policy
from ..models import DeliveryOutcome, File, User, Webhook, WebhookDelivery, isoformat, utcnow
from ..security import new_secret
from ..tenancy import get_scoped_or_404, in_organization, scoped
from .errors import InvalidInput

log = logging.getLogger(__name__)

DELIVER = "jobs.webhooks.deliver"
FILE_READY = "file.ready"
FILE_FAILED = "file.failed"
FILE_DELETED = "file.deleted"
EVENT_TYPES = (FILE_READY, FILE_FAILED, FILE_DELETED)
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
# Attempts kept per endpoint in the answer of GET .../deliveries.
RECENT_DELIVERIES = 100
MAX_ERROR_LENGTH = 500
USER_AGENT = "Coffer-Webhooks/1"


# ---- endpoints -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedWebhook:
    """A new endpoint with its signing secret, which is shown this once."""

    webhook: Webhook
    secret: str


def create_webhook(user: User, url: str, events: list[str]) -> IssuedWebhook:
    """Register an endpoint for the organization; 400 `url_not_allowed` for a URL that is
    not http(s) or whose host is or resolves to an internal address."""
    policy.require_admin(user)
    resolve_target(url)
    chosen = [event for event in EVENT_TYPES if event in events]
    secret = new_secret(SECRET_PREFIX)
    hook = Webhook(
        organization_id=user.organization_id,
        url=url,
        events=",".join(chosen),
        secret=secret,
        created_by=user.id,
        created_at=utcnow(),
    )
    with write_transaction() as session:
        session.add(hook)
    return IssuedWebhook(webhook=hook, secret=secret)


def list_webhooks(organization_id: int) -> list[Webhook]:
    """The organization's endpoints, oldest first."""
    return list(db.session.scalars(scoped(Webhook, organization_id).order_by(Webhook.id)))


def delete_webhook(user: User, webhook_id: int) -> None:
    """Remove an endpoint and its delivery record; deliveries still queued are dropped."""
    policy.require_admin(user)
    organization_id = user.organization_id
    with write_transaction() as session:
        hook = get_scoped_or_404(Webhook, webhook_id, organization_id, what="webhook")
        session.execute(
            delete(Webhook).where(in_organization(Webhook, organization_id), Webhook.id == hook.id)
        )


def recent_deliveries(
    organization_id: int, webhook_id: int, limit: int = RECENT_DELIVERIES
) -> list[WebhookDelivery]:
    """An endpoint's last `limit` attempts, newest first."""
    hook = get_scoped_or_404(Webhook, webhook_id, organization_id, what="webhook")
    return list(
        db.session.scalars(
            scoped(WebhookDelivery, organization_id)
            .where(WebhookDelivery.webhook_id == hook.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


# ---- where a URL may lead ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a webhook URL leads: the addresses checked, and what to send them."""

    scheme: str
    host: str
    port: int
    # The Host header: the URL's host, with its port when it is not the scheme's default.
    host_header: str
    # Path and query, as the request line carries them.
    path: str
    addresses: tuple[str, ...]


def refused(message: str) -> InvalidInput:
    """The refusal of a webhook URL."""
    return InvalidInput("url_not_allowed", message, field="url")


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    multicast, reserved, unspecified, shared (CGNAT), documentation or the like.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64) is public
    only if the IPv4 address inside is.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner: ipaddress.IPv4Address | None = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo is not None:
            inner = address.teredo[1]
        if inner is None and address in NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None and not is_public_address(inner):
            return False
    return (
        address.is_global
        and not (address.is_multicast or address.is_reserved or address.is_unspecified)
        and not any(address in network for network in NOT_GLOBAL)
    )


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not globally reachable, though `is_global` of the Pythons Coffer runs on (3.11) says so:
# IETF protocol assignments (192.0.0.8-10 among them), the 6to4 relay anycast, the
# deprecated site-local IPv6 range and IPv6's documentation range of RFC 9637.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in ("192.0.0.0/24", "192.88.99.0/24", "fec0::/10", "3fff::/20")
)


# getaddrinfo has no timeout of its own: lookups run on this small pool and are waited for
# at most WEBHOOK_RESOLVE_SECONDS, so a slow DNS server holds no web or worker thread for
# longer, and lookups that hang take at most RESOLVER_THREADS threads.
RESOLVER_THREADS = 4
_resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="coffer-resolve")


def _new_resolvers() -> None:
    """A fresh pool in a forked child: the parent's threads are not there."""
    global _resolvers
    _resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="coffer-resolve")


os.register_at_fork(after_in_child=_new_resolvers)

Result = TypeVar("Result")


def bounded(function: Callable[..., Result], seconds: float, *args: Any) -> Result:
    """`function(*args)` run on the resolver pool; TimeoutError when it takes longer than
    `seconds` (it is left to finish on its own: a thread cannot be stopped)."""
    future = _resolvers.submit(function, *args)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()  # still queued behind hung lookups: never started
        raise TimeoutError(f"no answer in {seconds:g} s") from None


def resolve_target(url: str) -> Target:
    """The URL's parts and every address its host resolves to, each checked; 400
    `url_not_allowed` unless all are public (or WEBHOOK_ALLOW_PRIVATE is set), for port 0,
    and when the lookup takes longer than WEBHOOK_RESOLVE_SECONDS."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused("the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise refused("the URL must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise refused("the URL must not carry a user name or password")
    if port == 0:
        raise refused("the URL's port must not be 0")
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    seconds = current_app.config["WEBHOOK_RESOLVE_SECONDS"]
    try:
        found = bounded(socket.getaddrinfo, seconds, host, port, 0, socket.SOCK_STREAM)
    except TimeoutError:
        raise refused(f"the host {host} did not resolve within {seconds} s") from None
    except (OSError, UnicodeError):
        raise refused(f"the host {host} does not resolve") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    if not current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address)):
                raise refused(
                    f"the host {host} is or resolves to {address}, which is not a public address"
                )
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == default_port else f"{shown_host}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, host_header, path, addresses)


# ---- events --------------------------------------------------------------------------


def file_snapshot(row: File) -> dict[str, Any]:
    """A file's fields as GET /api/files/<id> gives them (app/api/schemas.py FileDetails
    renders them), taken while the row exists."""
    return {
        "id": row.id,
        "filename": row.filename,
        "size": row.size,
        "mime_type": row.mime_type,
        "status": row.status,
        "uploaded_at": row.uploaded_at,
        "uploaded_by_email": row.uploader.email if row.uploader else None,
        "sha256": row.sha256,
        "error_message": row.error_message,
        "processed_at": row.processed_at,
    }


def retry_policy() -> Retry:
    """RQ's retry with the configured backoff (seconds before each retry)."""
    intervals = current_app.config["WEBHOOK_RETRY_SECONDS"]
    return Retry(max=len(intervals), interval=intervals)


def emit(event_type: str, organization_id: int, file: dict[str, Any]) -> str | None:
    """Queue one delivery of an event per endpoint of the organization that takes it.

    Called after the change it tells of has committed. Every endpoint gets the same event
    id, and keeps it across its retries, so a receiver can drop what it already has.
    Returns the event id, or None when no endpoint takes the event. A Redis that is away
    or a database that fails here loses the event (logged): no file change waits on webhooks.
    """
    hooks = _hooks_taking(event_type, organization_id)
    return _queue(event_type, organization_id, file, hooks) if hooks else None


def _hooks_taking(event_type: str, organization_id: int) -> list[Webhook]:
    """The organization's endpoints that take this event; none when they cannot be read."""
    try:
        return [h for h in list_webhooks(organization_id) if event_type in h.event_types]
    except SQLAlchemyError as exc:
        # The change itself has committed: it stands, and only its webhooks are lost.
        db.session.rollback()
        log.error("could not read the webhooks for a %s event: %s", event_type, exc)
        return []


def _queue(
    event_type: str, organization_id: int, file: dict[str, Any], hooks: list[Webhook]
) -> str:
    """Queue the event's delivery to each of `hooks`; its id."""
    event = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "created_at": isoformat(utcnow()),
        "organization_id": organization_id,
        "file": file,
    }
    queue = get_webhook_queue()
    for hook in hooks:
        try:
            queue.enqueue(
                DELIVER,
                hook.id,
                organization_id,
                event,
                # Names this endpoint, not just its id: see webhook_for_delivery.
                isoformat(hook.created_at),
                job_id=f"webhook-{event['id']}-{hook.id}",
                retry=retry_policy(),
                # One attempt takes at most WEBHOOK_TIMEOUT_SECONDS; the rest is bookkeeping.
                job_timeout=current_app.config["WEBHOOK_TIMEOUT_SECONDS"] + 50,
                result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
            )
        except RedisError as exc:
            log.warning(
                "could not queue the %s event %s for webhook %s: %s",
                event_type,
                event["id"],
                hook.id,
                exc,
            )
    return str(event["id"])


def file_event(organization_id: int, file_id: str, event_type: str) -> str | None:
    """Emit `file.ready` or `file.failed` for a file whose new status has committed."""
    # The endpoints first: most organizations have none, and then the file (and its
    # uploader, a second query) is never read.
    hooks = _hooks_taking(event_type, organization_id)
    if not hooks:
        return None
    row = db.session.scalars(scoped(File, organization_id).where(File.id == file_id)).first()
    if row is None:  # deleted meanwhile: its file.deleted tells the rest
        return None
    return _queue(event_type, organization_id, file_snapshot(row), hooks)


# ---- delivery ------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The Coffer-Signature header: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def webhook_for_delivery(
    organization_id: int, webhook_id: int, created_at: str | None, event_created_at: str
) -> Webhook | None:
    """The endpoint a queued delivery is for, or None once it was deleted.

    An endpoint that has the id but not the creation time the delivery was queued with is
    another one that got a deleted endpoint's id (SQLite before migration 0009, a restored
    backup): it is never sent the old endpoint's events, nor signs them with its secret.
    """
    hook = db.session.scalars(
        scoped(Webhook, organization_id).where(Webhook.id == webhook_id)
    ).first()
    if hook is None:
        return None
    created = isoformat(hook.created_at) or ""
    if created_at is None:
        # Queued before deliveries named their endpoint's creation time: the endpoint
        # must at least be older than the event.
        return hook if created <= event_created_at else None
    return hook if created == created_at else None


@dataclass(frozen=True)
class Attempt:
    """What one POST to an endpoint came to."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        """A 2xx answer, and nothing else, is a delivery."""
        return self.status_code is not None and 200 <= self.status_code < 300


def send(hook: Webhook, event_id: str, body: bytes) -> Attempt:
    """POST a signed event body to an endpoint, once: no redirect followed, and at most
    WEBHOOK_TIMEOUT_SECONDS (10) for the whole attempt.

    The host is resolved and every address checked again here (DNS may have changed since
    registration), and the connection goes to an address just checked, never to a fresh
    lookup, so a name cannot pass the check and then resolve elsewhere (DNS rebinding).
    HTTPS still verifies the certificate against the URL's host name.
    """
    started = time.monotonic()
    limit = float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    timed_out = f"timed out after {limit:.0f} s"
    try:
        target = resolve_target(hook.url)
    except InvalidInput as exc:
        return Attempt(None, f"url_not_allowed: {exc.message}", elapsed_ms(started))
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Coffer-Event-Id": event_id,
        "Coffer-Signature": signature(hook.secret, int(time.time()), body),
    }
    error = "the host has no address"
    for address in target.addresses:
        remaining = limit - (time.monotonic() - started)
        if remaining <= 0:
            error = timed_out
            break
        pool = connection_pool(target, address)
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(total=remaining),
                preload_content=False,
                assert_same_host=False,
            )
            status = response.status
            response.release_conn()
            return Attempt(status, None, elapsed_ms(started))
        except NewConnectionError as exc:
            # Refused or unreachable: the host's next address may answer.
            error = f"could not connect to {address}: {connection_reason(exc)}"
        except Urllib3Timeout:
            error = timed_out
            break
        except (HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        finally:
            pool.close()
    return Attempt(None, error[:MAX_ERROR_LENGTH], elapsed_ms(started))


def connection_pool(target: Target, address: str) -> urllib3.HTTPConnectionPool:
    """A one-request pool to this address; HTTPS checks the certificate for the URL's host."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            maxsize=1,
        )
    return urllib3.HTTPConnectionPool(address, target.port, maxsize=1)


def connection_reason(exc: NewConnectionError) -> str:
    """The operating system's words for a failed connection ("Connection refused", ...)."""
    text = str(exc)
    return text.rsplit(": ", 1)[-1] if ": " in text else text


def elapsed_ms(started: float) -> int:
    """Milliseconds since a time.monotonic() reading."""
    return round((time.monotonic() - started) * 1000)


def record_attempt(
    hook: Webhook,
    event_id: str,
    event_type: str,
    attempt_number: int,
    attempt: Attempt,
    retry_in: int | None,
) -> DeliveryOutcome:
    """Record one attempt and decide what it comes to: succeeded (a 2xx), retrying (another
    attempt is due in `retry_in` seconds), or failed (no retry left).

    The one place an attempt's outcome is decided.
    """
    now = utcnow()
    if attempt.succeeded:
        outcome, next_attempt_at = DeliveryOutcome.SUCCEEDED, None
    elif retry_in is not None:
        outcome, next_attempt_at = DeliveryOutcome.RETRYING, now + timedelta(seconds=retry_in)
    else:
        outcome, next_attempt_at = DeliveryOutcome.FAILED, None
    with write_transaction() as session:
        session.add(
            WebhookDelivery(
                webhook_id=hook.id,
                organization_id=hook.organization_id,
                event_id=event_id,
                event_type=event_type,
                attempt=attempt_number,
                outcome=outcome,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
                delivered_at=now,
                next_attempt_at=next_attempt_at,
            )
        )
    level = logging.INFO if outcome is DeliveryOutcome.SUCCEEDED else logging.WARNING
    log.log(
        level,
        "webhook %s, event %s, attempt %d: %s (%s)",
        hook.id,
        event_id,
        attempt_number,
        outcome,
        attempt.status_code if attempt.error is None else attempt.error,
        extra={"webhook_id": hook.id, "event_id": event_id, "outcome": str(outcome)},
    )
    return outcome
