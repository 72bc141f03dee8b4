"""Webhooks: an organization's endpoints, the file events sent to them, signed, and
every delivery attempt; URLs that lead inside the network are refused.

The deliveries themselves run as RQ jobs (jobs/webhooks.py, named here by dotted path).
The package's parts: endpoints.py (registering, listing, deleting endpoints), addresses.py
(where a URL may lead), events.py (the event types, queueing, the body sent) and
delivery.py (signing, sending, recording each attempt).
"""

from __future__ import annotations

from .addresses import Target, bounded, is_public_address, refused, resolve_target
from .delivery import (
    MAX_ERROR_LENGTH,
    USER_AGENT,
    Attempt,
    connection_pool,
    record_attempt,
    send,
    signature,
    webhook_for_delivery,
)
from .endpoints import (
    MAX_URL_LENGTH,
    RECENT_DELIVERIES,
    SECRET_PREFIX,
    IssuedWebhook,
    create_webhook,
    delete_webhook,
    list_webhooks,
    recent_deliveries,
)
from .events import (
    DELIVER,
    EVENT_TYPES,
    FILE_DELETED,
    FILE_FAILED,
    FILE_READY,
    FILE_RESTORED,
    FILE_TRASHED,
    FILE_VERSION_ADDED,
    EventType,
    emit,
    emit_each,
    event_body,
    file_event,
    file_json,
    file_snapshot,
    retry_policy,
)

__all__ = [
    "DELIVER",
    "EVENT_TYPES",
    "FILE_DELETED",
    "FILE_FAILED",
    "FILE_READY",
    "FILE_RESTORED",
    "FILE_TRASHED",
    "FILE_VERSION_ADDED",
    "MAX_ERROR_LENGTH",
    "MAX_URL_LENGTH",
    "RECENT_DELIVERIES",
    "SECRET_PREFIX",
    "USER_AGENT",
    "Attempt",
    "EventType",
    "IssuedWebhook",
    "Target",
    "bounded",
    "connection_pool",
    "create_webhook",
    "delete_webhook",
    "emit",
    "emit_each",
    "event_body",
    "file_event",
    "file_json",
    "file_snapshot",
    "is_public_address",
    "list_webhooks",
    "recent_deliveries",
    "record_attempt",
    "refused",
    "resolve_target",
    "retry_policy",
    "send",
    "signature",
    "webhook_for_delivery",
]
