"""Server-side sessions in Redis that fail cleanly: no Redis, a 503, never a 500."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionMixin
from redis.exceptions import RedisError

# Where a request records that its session could not be read.
STORE_ERROR = "coffer.session_store_error"


class TolerantSessions:
    """Flask-Session's Redis interface, with Redis errors held back to the view stage.

    Flask opens the session before any error handler can answer, so a Redis outage
    there would be a 500 (or, in tests, an exception). The error is noted instead,
    the request gets a null session, and `refuse_without_session_store` raises it again
    where the JSON error handlers turn it into a 503.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def open_session(self, app: Flask, req: Request) -> SessionMixin | None:
        """The stored session; None (a null session) when Redis cannot be read."""
        try:
            session: SessionMixin | None = self.inner.open_session(app, req)
        except RedisError as exc:
            req.environ[STORE_ERROR] = exc
            return None
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save as Flask-Session does; nothing to save for a session never read."""
        if STORE_ERROR in request.environ:
            return
        self.inner.save_session(app, session, response)

    def __getattr__(self, name: str) -> Any:
        # Everything else (null sessions, regenerate, cookie names) is Flask-Session's.
        return getattr(self.inner, name)


def refuse_without_session_store() -> None:
    """Raise the Redis error a request met opening its session, inside the view stage."""
    error = request.environ.get(STORE_ERROR)
    # Static files need no session: the stylesheet of the page that says Redis is away loads.
    if error is not None and not (request.endpoint or "").endswith("static"):
        raise error


def init_app(app: Flask) -> None:
    """Wrap the session interface Flask-Session installed; check first in every request."""
    app.session_interface = TolerantSessions(app.session_interface)  # type: ignore[assignment]
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_without_session_store)
