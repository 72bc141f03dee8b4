"""Webhook endpoints (admin): register, list and delete an organization's endpoints, and
read their recent delivery attempts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_login import current_user, login_required

from ..authentication import admin_required
from ..models import Webhook
from ..services import webhooks
from . import schemas
from .inputs import parse_body

bp = Blueprint("webhooks", __name__, url_prefix="/api/org/webhooks")


def described(hook: Webhook) -> dict[str, Any]:
    """An endpoint's fields as answered, without its secret."""
    return {
        "id": hook.id,
        "url": hook.url,
        "events": hook.event_types,
        "created_at": hook.created_at,
    }


@bp.post("")
@login_required
@admin_required
def create() -> tuple[dict[str, Any], int]:
    """Register an endpoint; its signing secret is in this answer only."""
    body = parse_body(schemas.WebhookRequest)
    issued = webhooks.create_webhook(current_user, body.url, list(body.events))
    return schemas.IssuedWebhook(**described(issued.webhook), secret=issued.secret).body(), 201


@bp.get("")
@login_required
@admin_required
def index() -> dict[str, Any]:
    """The organization's endpoints, never their secrets."""
    listed = webhooks.list_webhooks(current_user.organization_id)
    return schemas.WebhookList(webhooks=[schemas.Webhook(**described(h)) for h in listed]).body()


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete("/<id:webhook_id>")
@login_required
@admin_required
def delete(webhook_id: int) -> tuple[str, int]:
    """Remove an endpoint; nothing more is sent to it."""
    webhooks.delete_webhook(current_user, webhook_id)
    return "", 204


@bp.get("/<id:webhook_id>/deliveries")
@login_required
@admin_required
def deliveries(webhook_id: int) -> dict[str, Any]:
    """An endpoint's recent delivery attempts, newest first."""
    rows = webhooks.recent_deliveries(current_user.organization_id, webhook_id)
    return schemas.DeliveryList(
        deliveries=[
            schemas.Delivery.model_validate(
                {
                    "event_id": row.event_id,
                    "type": row.event_type,
                    "attempt": row.attempt,
                    "outcome": row.outcome,
                    "status_code": row.status_code,
                    "error": row.error,
                    "duration_ms": row.duration_ms or 0,
                    "delivered_at": row.delivered_at,
                    "next_attempt_at": row.next_attempt_at,
                }
            )
            for row in rows
        ]
    ).body()
