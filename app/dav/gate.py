"""The way into `/dav/`: each request runs inside the Flask app's request context (so the
database session, Redis and the activity record work as for the API) and is authenticated
by HTTP Basic with the member's email and an API token; a read-only token only reads.

Cookies never authenticate WebDAV: they are dropped before anything reads them. Failed
attempts count against the limits login has (LOGIN_LIMIT_PER_EMAIL and _PER_ADDRESS).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis import Redis
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import ClosingIterator
from wsgidav.dav_provider import DAVProvider

from ..extensions import limiter
from ..files import policy
from ..services.errors import DomainError, NotAllowed
from ..services.tokens import token_for_secret
from . import reading
from .provider import status_of

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The methods that change nothing: all a read-only token may send.
READING = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})
CHALLENGE = 'Basic realm="Coffer", charset="UTF-8"'
# Set in the environ when the answer is a file's, handed to the server as it is.
PASSED_THROUGH = "coffer.dav.file"


def answer(
    start_response: StartResponse, status: str, message: str, headers: list[tuple[str, str]]
) -> list[bytes]:
    """A short plain-text refusal."""
    body = (message + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def failure_limits(email: str) -> list[tuple[RateLimitItem, str]]:
    """The counters a failed attempt hits: per email from this address, and per address."""
    address = request.remote_addr or ""
    config = current_app.config
    return [
        *(
            (item, f"dav-email/{email}|{address}")
            for item in parse_many(config["LOGIN_LIMIT_PER_EMAIL"])
        ),
        *(
            (item, f"dav-address/{address}")
            for item in parse_many(config["LOGIN_LIMIT_PER_ADDRESS"])
        ),
    ]


def all_have_room(counters: list[tuple[RateLimitItem, str]]) -> bool:
    """Whether no counter is full: the question every request asks before its credentials
    are looked at. Fixed windows in Redis (as configured) are read in one round trip (MGET)
    rather than one GET per counter; any other strategy by its own test."""
    strategy = limiter.limiter
    storage = strategy.storage
    if isinstance(strategy, FixedWindowRateLimiter) and isinstance(storage, RedisStorage):
        keys = [storage.prefixed_key(item.key_for(key)) for item, key in counters]
        client: Redis = storage.get_connection(readonly=True)  # type: ignore[assignment]
        counts = client.mget(keys)
        limits = [item.amount for item, _key in counters]
        return all(int(count or 0) < limit for count, limit in zip(counts, limits, strict=True))
    return all(strategy.test(item, key) for item, key in counters)


def wait_for(counters: list[tuple[RateLimitItem, str]]) -> int | None:
    """Seconds until every counter has room again; None when all have room now."""
    if all_have_room(counters):
        return None
    strategy = limiter.limiter
    waits = [
        strategy.get_window_stats(item, key).reset_time - time.time()
        for item, key in counters
        if not strategy.test(item, key)
    ]
    return max(1, math.ceil(max(waits))) if waits else None


class Gate:
    """WSGI middleware before WsgiDAV: context, authentication, a token's access."""

    def __init__(self, app: Flask, dav: WSGIApplication, provider: DAVProvider) -> None:
        self.app = app
        self.dav = dav
        self.provider = provider

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one WebDAV request inside a request context of the Flask app."""
        environ.pop("HTTP_COOKIE", None)
        context = self.app.request_context(environ)
        context.push()
        try:
            result = self.admitted(environ, start_response)
        except BaseException:
            context.pop()
            raise
        if environ.pop(PASSED_THROUGH, False):
            # A file's answer (reading.py) goes to the server as it is: wrapped, waitress
            # would not see its file (`wsgi.file_wrapper`) and would copy it through a
            # generator. The context ends now, as Flask ends its own before a download's
            # body is sent; the download's record keeps the app itself.
            context.pop()
            return result
        if environ["REQUEST_METHOD"] != "GET":
            # Every answer but a file's bytes is built in memory by WsgiDAV anyway: taken
            # whole here, so the context ends with the request, closed or not.
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                context.pop()
            return body
        # A body streamed after this returns (a GET's bytes): the context ends when the
        # server closes it.
        return ClosingIterator(result, context.pop)

    def admitted(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The WebDAV answer for an authenticated member, or the refusal."""
        if "#" in environ.get("REQUEST_URI", ""):
            # waitress drops a fragment from the path: refused, so that no request acts on
            # another resource than the one its client named.
            return answer(start_response, "400 Bad Request", "a request URI has no fragment", [])
        credentials = request.authorization
        if credentials is None or credentials.type != "basic":
            return answer(
                start_response,
                "401 Unauthorized",
                "sign in with your email and an API token as the password",
                [("WWW-Authenticate", CHALLENGE)],
            )
        email = (credentials.username or "").strip().lower()
        counters = failure_limits(email)
        wait = wait_for(counters)
        if wait is not None:
            return answer(
                start_response,
                "429 Too Many Requests",
                "too many failed attempts; wait and try again",
                [("Retry-After", str(wait))],
            )
        token = token_for_secret(credentials.password or "")
        if token is None or token.user.email.lower() != email:
            for item, key in counters:
                limiter.limiter.hit(item, key)
            return answer(
                start_response,
                "401 Unauthorized",
                "the email or the API token is not right",
                [("WWW-Authenticate", CHALLENGE)],
            )
        g.auth_method = "token"
        g.token_access = token.access
        # The activity record names the token as the actor.
        g.token_id = token.id
        g.dav_user = token.user
        if environ["REQUEST_METHOD"] not in READING:
            try:
                policy.require_change_access(token.access)
            except NotAllowed as refused:
                return answer(start_response, "403 Forbidden", refused.message, [])
        environ["wsgidav.auth.user_name"] = str(token.user.id)
        environ["wsgidav.auth.realm"] = "Coffer"
        environ["wsgidav.auth.roles"] = []
        if reading.takes(environ):
            served = self.file_answer(environ, start_response)
            if served is not None:
                return served
        result: Iterable[bytes] = self.dav(environ, start_response)
        return result

    def file_answer(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """A GET or HEAD of a file, answered as the API's downloads are; None for a path
        that names no file (WsgiDAV answers it)."""
        try:
            response = reading.file_answer(self.provider, environ)
        except DomainError as refused:
            # The file's bytes are missing from storage (410), as the API says it.
            status = status_of(refused)
            reason = HTTP_STATUS_CODES.get(status, "Error")
            return answer(start_response, f"{status} {reason}", refused.message, [])
        except HTTPException as refused:
            # A range that starts past the end: 416 with the length in Content-Range.
            headers = [h for h in refused.get_headers() if h[0].lower() != "content-type"]
            return answer(
                start_response, f"{refused.code} {refused.name}", refused.description or "", headers
            )
        if response is None:
            return None
        environ[PASSED_THROUGH] = True
        body: Iterable[bytes] = response(environ, start_response)
        return body
