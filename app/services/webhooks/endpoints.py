"""An organization's webhook endpoints: registered (with their signing secret), listed,
deleted, and their recent delivery attempts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete

from ...database import write_transaction
from ...extensions import db
from ...files import policy
from ...models import User, Webhook, WebhookDelivery, utcnow
from ...security import new_secret
from .. import activity
from ..tenancy import get_scoped_or_404, in_organization, scoped
from .addresses import resolve_target
from .events import EVENT_TYPES

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
# Attempts kept per endpoint in the answer of GET .../deliveries.
RECENT_DELIVERIES = 100


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
        session.flush()  # its id, for the record
        activity.record(
            "webhook.created",
            user.organization_id,
            activity.acting(user),
            activity.Target("webhook", str(hook.id), url),
        )
    return IssuedWebhook(webhook=hook, secret=secret)


def list_webhooks(user: User) -> list[Webhook]:
    """The user's organization's endpoints, oldest first (admins only)."""
    policy.require_admin(user)
    return list(db.session.scalars(scoped(Webhook, user.organization_id).order_by(Webhook.id)))


def delete_webhook(user: User, webhook_id: int) -> None:
    """Remove an endpoint and its delivery record; deliveries still queued are dropped."""
    policy.require_admin(user)
    organization_id = user.organization_id
    with write_transaction() as session:
        hook = get_scoped_or_404(Webhook, webhook_id, organization_id, what="webhook")
        session.execute(
            delete(Webhook).where(in_organization(Webhook, organization_id), Webhook.id == hook.id)
        )
        activity.record(
            "webhook.deleted",
            organization_id,
            activity.acting(user),
            activity.Target("webhook", str(hook.id), hook.url),
        )


def recent_deliveries(
    user: User, webhook_id: int, limit: int = RECENT_DELIVERIES
) -> list[WebhookDelivery]:
    """An endpoint's last `limit` attempts, newest first (admins only)."""
    policy.require_admin(user)
    organization_id = user.organization_id
    hook = get_scoped_or_404(Webhook, webhook_id, organization_id, what="webhook")
    return list(
        db.session.scalars(
            scoped(WebhookDelivery, organization_id)
            .where(WebhookDelivery.webhook_id == hook.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
