"""Sending an event to an endpoint: its signature, one POST to an address just checked,
and the record of each attempt with its outcome."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import urllib3
from flask import current_app
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from ...database import write_transaction
from ...extensions import db
from ...models import DeliveryOutcome, Webhook, WebhookDelivery, isoformat, utcnow
from ..errors import InvalidInput
from ..tenancy import scoped
from .addresses import Target, resolve_target

# The package's name, which log lines have always carried.
log = logging.getLogger(__package__)

MAX_ERROR_LENGTH = 500
USER_AGENT = "Coffer-Webhooks/1"


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
