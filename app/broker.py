"""The Redis connection shared by sessions, rate limits and the RQ queue."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app
from redis import Redis
from rq import Queue

QUEUE_NAME = "validation"
# Webhook deliveries wait on a queue of their own, after validations: a slow receiver
# (up to its 10 s timeout per attempt) never holds up a file's verdict.
WEBHOOK_QUEUE_NAME = "webhooks"
# Previews are made after the verdict, on a queue of their own taken last: a 100-megapixel
# photo's preview never holds up a verdict or a delivery.
PREVIEW_QUEUE_NAME = "previews"


def connect(url: str) -> Redis:
    """A Redis client with short timeouts, so a dead Redis fails fast, never hangs."""
    return Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
    )


def init_app(app: Flask) -> None:
    """Create the app's Redis client; Flask-Session is handed the same one."""
    client = connect(app.config["REDIS_URL"])
    app.extensions["redis"] = client
    app.config["SESSION_REDIS"] = client


def get_redis() -> Redis:
    """The current app's Redis client."""
    return cast(Redis, current_app.extensions["redis"])


def get_queue(connection: Redis | None = None) -> Queue:
    """The validation queue, on an explicit connection (RQ keeps no global one)."""
    return Queue(QUEUE_NAME, connection=connection or get_redis())


def get_webhook_queue(connection: Redis | None = None) -> Queue:
    """The queue of webhook deliveries."""
    return Queue(WEBHOOK_QUEUE_NAME, connection=connection or get_redis())


def get_preview_queue(connection: Redis | None = None) -> Queue:
    """The queue of previews jobs."""
    return Queue(PREVIEW_QUEUE_NAME, connection=connection or get_redis())


def worker_queues(connection: Redis | None = None) -> list[Queue]:
    """The queues a worker serves, in the order it takes their jobs: validations first,
    previews last."""
    return [
        get_queue(connection),
        get_webhook_queue(connection),
        get_preview_queue(connection),
    ]
