"""The Redis connection shared by sessions, rate limits and the RQ queue."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app
from redis import Redis
from rq import Queue

QUEUE_NAME = "validation"


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
