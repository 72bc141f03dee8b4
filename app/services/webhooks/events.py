"""The file events webhooks send: their types (stated here only), the file they carry,
their queueing, one delivery job per endpoint that takes them, and their JSON body."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy.exc import SQLAlchemyError

from ...broker import get_webhook_queue
from ...extensions import db
from ...files import folders, names
from ...models import File, FileStatus, Webhook, isoformat, utcnow
from ..tenancy import scoped

# The package's name, which log lines have always carried.
log = logging.getLogger(__package__)

DELIVER = "jobs.webhooks.deliver"
# Every event type, in the order endpoints list them; the API's schemas take it from here.
EventType = Literal[
    "file.ready",
    "file.failed",
    "file.deleted",
    "file.trashed",
    "file.restored",
    "file.version_added",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
FILE_READY, FILE_FAILED, FILE_DELETED, FILE_TRASHED, FILE_RESTORED, FILE_VERSION_ADDED = EVENT_TYPES
# The version events queued before versions existed tell of (every file had one).
FIRST_VERSION = 1


def file_snapshot(row: File, path: str | None = None) -> dict[str, Any]:
    """A file's fields as GET /api/files/<id> gives them (file_json renders them), taken
    while the row exists; `path` when the caller knows it already."""
    if path is None:
        path = folders.file_path(row.organization_id, row.folder_id, row.filename)
    return {
        "id": row.id,
        "filename": row.filename,
        "size": row.size,
        "mime_type": row.mime_type,
        "status": row.status,
        "uploaded_at": row.uploaded_at,
        "uploaded_by_email": row.uploader.email if row.uploader else None,
        "folder_id": row.folder_id,
        "uploaded_via_request": row.uploaded_via_request,
        "preview": row.preview,
        "sha256": row.sha256,
        "error_message": row.error_message,
        "processed_at": row.processed_at,
        "path": path,
        "version": row.version,
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


def emit_each(event_type: str, organization_id: int, files: list[dict[str, Any]]) -> int:
    """`emit` for each of many files (a purge's), the endpoints read once; how many events
    were queued."""
    if not files:
        return 0
    hooks = _hooks_taking(event_type, organization_id)
    if not hooks:
        return 0
    for file in files:
        _queue(event_type, organization_id, file, hooks)
    return len(files)


def _hooks_taking(event_type: str, organization_id: int) -> list[Webhook]:
    """The organization's endpoints that take this event, oldest first; none when they
    cannot be read."""
    try:
        hooks = db.session.scalars(scoped(Webhook, organization_id).order_by(Webhook.id))
        return [h for h in hooks if event_type in h.event_types]
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


# ---- the body sent -------------------------------------------------------------------


def event_body(event: dict[str, Any]) -> bytes:
    """The JSON body of a queued event (WebhookEvent in the OpenAPI document), compact."""
    payload = {
        "id": event["id"],
        "type": event["type"],
        "created_at": event["created_at"],
        "organization_id": event["organization_id"],
        "data": {"file": file_json(event["file"])},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def file_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A file_snapshot as GET /api/files/<id> renders the file (FileDetails in the API's
    schemas), field for field and in its order."""
    return {
        "id": str(uuid.UUID(str(snapshot["id"]))),
        "filename": snapshot["filename"],
        "size": snapshot["size"],
        "mime_type": snapshot["mime_type"],
        "status": FileStatus(snapshot["status"]).value,
        "uploaded_at": _timestamp(snapshot["uploaded_at"]),
        "uploaded_by_email": snapshot["uploaded_by_email"],
        # Events queued before folders existed carry neither: their file was at the top.
        "folder_id": snapshot.get("folder_id") or names.ROOT,
        "uploaded_via_request": snapshot.get("uploaded_via_request"),
        # Events queued before previews existed carry none (nor had the file one then).
        "preview": bool(snapshot.get("preview"))
        and FileStatus(snapshot["status"]) is FileStatus.READY,
        "sha256": snapshot["sha256"],
        "error_message": snapshot["error_message"],
        "processed_at": _timestamp(snapshot["processed_at"]),
        "path": snapshot.get("path") or f"/{snapshot['filename']}",
        "version": int(snapshot.get("version") or FIRST_VERSION),
    }


def _timestamp(value: datetime | str | None) -> str | None:
    """A snapshot's time as the API writes times; ISO 8601 text is taken as well."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return isoformat(value)
