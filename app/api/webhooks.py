"""Webhook endpoints (admin): register, list and delete an organization's endpoints, and
read their recent delivery attempts."""

from __future__ import annotations

from typing import Any

from flask_login import current_user, login_required

from .. import schemas
from ..authentication import admin_required
from ..models import Webhook
from ..services import webhooks
from .contract import (
    E400_WRITE,
    E401,
    E403_ADMIN,
    E404_WEBHOOK,
    E413_JSON,
    JSON_BODY_CODES,
    READ,
    WEBHOOK_ID,
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

bp = DocumentedBlueprint("webhooks", __name__, url_prefix="/api/org/webhooks")


def described(hook: Webhook) -> dict[str, Any]:
    """An endpoint's fields as answered, without its secret."""
    return {
        "id": hook.id,
        "url": hook.url,
        "events": hook.event_types,
        "created_at": hook.created_at,
    }


@bp.post(
    "",
    openapi=operation(
        "createWebhook",
        "Register an endpoint for file events (admin)",
        "webhooks",
        {
            "201": with_links(
                response(
                    "The endpoint with its signing secret, shown once.",
                    ref(schemas.IssuedWebhook),
                ),
                DeleteWebhook=link("deleteWebhook", webhook_id="$response.body#/id"),
                ListDeliveries=link("listWebhookDeliveries", webhook_id="$response.body#/id"),
            ),
            "400": error(
                "the body is not a JSON object of the fields, the URL is not http(s), "
                "carries credentials, does not resolve, or its host is or resolves to a "
                "loopback, private, link-local or other internal address "
                "(`url_not_allowed`, unless WEBHOOK_ALLOW_PRIVATE), or a session write "
                "lacks its CSRF token.",
                *JSON_BODY_CODES,
                "url_not_allowed",
                "csrf_failed",
            ),
            "401": E401,
            "403": E403_ADMIN,
            "413": E413_JSON,
        },
        security=WRITE,
        body=json_body(schemas.WebhookRequest),
        description="Each event is POSTed to the URL as a WebhookEvent (see `webhooks` "
        "in this document), signed with the secret.",
    ),
)
@login_required
@admin_required
def create() -> tuple[dict[str, Any], int]:
    """Register an endpoint; its signing secret is in this answer only."""
    body = parse_body(schemas.WebhookRequest)
    issued = webhooks.create_webhook(current_user, body.url, list(body.events))
    return schemas.IssuedWebhook(**described(issued.webhook), secret=issued.secret).body(), 201


@bp.get(
    "",
    openapi=operation(
        "listWebhooks",
        "The organization's endpoints, never their secrets (admin)",
        "webhooks",
        {
            "200": response("The endpoints.", ref(schemas.WebhookList)),
            "401": E401,
            "403": E403_ADMIN,
        },
        security=READ,
    ),
)
@login_required
@admin_required
def index() -> dict[str, Any]:
    """The organization's endpoints, never their secrets."""
    listed = webhooks.list_webhooks(current_user)
    return schemas.WebhookList(webhooks=[schemas.Webhook(**described(h)) for h in listed]).body()


# Ids past the 32-bit id column match no route (404) rather than overflow the database.
@bp.delete(
    "/<id:webhook_id>",
    openapi=operation(
        "deleteWebhook",
        "Remove an endpoint; nothing more is sent to it (admin)",
        "webhooks",
        {
            "204": response("Deleted."),
            "400": E400_WRITE,
            "401": E401,
            "403": E403_ADMIN,
            "404": E404_WEBHOOK,
        },
        security=WRITE,
        parameters=[WEBHOOK_ID],
    ),
)
@login_required
@admin_required
def delete(webhook_id: int) -> tuple[str, int]:
    """Remove an endpoint; nothing more is sent to it."""
    webhooks.delete_webhook(current_user, webhook_id)
    return "", 204


@bp.get(
    "/<id:webhook_id>/deliveries",
    openapi=operation(
        "listWebhookDeliveries",
        "An endpoint's last 100 delivery attempts, newest first (admin)",
        "webhooks",
        {
            "200": response("The attempts.", ref(schemas.DeliveryList)),
            "401": E401,
            "403": E403_ADMIN,
            "404": E404_WEBHOOK,
        },
        security=READ,
        parameters=[WEBHOOK_ID],
    ),
)
@login_required
@admin_required
def deliveries(webhook_id: int) -> dict[str, Any]:
    """An endpoint's recent delivery attempts, newest first."""
    rows = webhooks.recent_deliveries(current_user, webhook_id)
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
