"""Sessions: a signed cookie for anonymous visitors, Redis for signed-in users, bounded per user.

An anonymous visitor's session (the raw CSRF token behind the sign-in and sign-up forms,
nothing else) lives in a signed, HttpOnly, SameSite=Lax cookie and costs the server nothing:
anyone may ask for /login a million times. Only a session with a user id is stored in Redis,
under a fresh id at every login (the pre-login id is never authenticated), and each user keeps
at most SESSION_MAX_PER_USER of them: past the cap the oldest is deleted. Redis errors are held
back to the view stage, where they answer 503 in JSON, never a 500.
"""

from __future__ import annotations

import time
from typing import Any, cast

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin
from itsdangerous import BadSignature
from redis import Redis
from redis.exceptions import RedisError

# Where a request records that its session could not be read.
STORE_ERROR = "coffer.session_store_error"
# The Redis session (id, user id) a request's session was read from, until it is deleted.
READ_FROM = "coffer.session_read_from"
# Set when the session was read from a valid anonymous cookie.
FROM_COOKIE = "coffer.session_from_cookie"
# Set by `regenerate`: this response starts a login's session.
STARTED = "coffer.session_started"
# Flask-Login's session key: a session holding it is a signed-in user's.
USER_ID_FIELD = "_user_id"
# Each user's live session ids, scored by login time.
USER_SESSIONS_PREFIX = "coffer:user-sessions:"


class VisitorCookies(SecureCookieSessionInterface):
    """Flask's own signed-cookie format (itsdangerous, the app's secret key and its
    fallbacks), under a salt of its own so no other signed value passes for a session."""

    salt = "coffer-visitor-session"


class TieredSessions(SessionInterface):
    """Anonymous sessions in a signed cookie, signed-in ones in Flask-Session's Redis store.

    Both use the one cookie name: a Redis session id is URL-safe base64 with no dot, a
    signed cookie always has dots, so the value says which it is without a Redis read.
    Flask opens the session before any error handler can answer, so a Redis outage
    there would be a 500; the error is noted instead, the request gets a null session,
    and `refuse_without_session_store` raises it again in the view stage (a 503).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner  # Flask-Session's RedisSessionInterface
        self.cookies = VisitorCookies()

    # ---- opening ---------------------------------------------------------------------

    def open_session(self, app: Flask, req: Request) -> SessionMixin | None:
        """The visitor's cookie session, or the stored session its cookie names."""
        value = req.cookies.get(self.get_cookie_name(app))
        if value and "." in value:
            return self.visitor_session(app, req, value)
        try:
            session: SessionMixin = self.inner.open_session(app, req)
        except RedisError as exc:
            req.environ[STORE_ERROR] = exc
            return None
        sid = getattr(session, "sid", None)
        if value and sid == value:  # found in Redis (Flask-Session gives a new id otherwise)
            req.environ[READ_FROM] = (sid, contents(session).get(USER_ID_FIELD))
        return session

    def visitor_session(self, app: Flask, req: Request, value: str) -> SessionMixin:
        """The session a signed cookie holds; an empty one for a cookie altered or too old."""
        data: dict[str, Any] = {}
        serializer = self.cookies.get_signing_serializer(app)
        if serializer is not None:
            try:
                data = dict(serializer.loads(value, max_age=self.lifetime_seconds(app)))
                req.environ[FROM_COOKIE] = True
            except BadSignature:
                data = {}
        # Never signed in by a cookie, whatever it says: only Redis holds signed-in sessions.
        data.pop(USER_ID_FIELD, None)
        session: SessionMixin = self.inner.session_class(
            data,
            sid=self.inner._generate_sid(self.inner.sid_length),
            permanent=self.inner.permanent,
        )
        return session

    # ---- saving ----------------------------------------------------------------------

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Store a signed-in session in Redis; write anything else to the signed cookie."""
        if STORE_ERROR in request.environ:
            return  # nothing to save for a session never read
        user_id = contents(session).get(USER_ID_FIELD)
        if user_id is not None:
            self.inner.save_session(app, session, response)
            if request.environ.pop(STARTED, False):
                self.enter(app, str(user_id), str(session.sid))  # type: ignore[attr-defined]
            elif session.modified:
                # Saving gave the session a new time to live: its user's list lives as long.
                self.client.expire(USER_SESSIONS_PREFIX + str(user_id), self.lifetime_seconds(app))
            return
        # Logged out, voided by a deactivation, or a stored anonymous session of an
        # older version: the Redis record goes, what is left is a visitor's.
        self.forget_stored()
        self.save_visitor(app, session, response)

    def save_visitor(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write the anonymous session to its cookie, or remove a cookie left with nothing."""
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        content = {key: value for key, value in contents(session).items() if key != "_permanent"}
        if not content:
            if name in request.cookies:
                response.delete_cookie(
                    name, domain=domain, path=path, secure=secure, samesite=samesite,
                    httponly=httponly,
                )  # fmt: skip
                response.vary.add("Cookie")
            return
        if request.environ.get(FROM_COOKIE) and not session.modified:
            return  # the cookie the browser holds already says this
        serializer = self.cookies.get_signing_serializer(app)
        if serializer is None:
            raise RuntimeError("SECRET_KEY must be set to sign visitors' sessions")
        # No Expires: a visitor's cookie ends with the browser (the signature still
        # expires after SESSION_LIFETIME_DAYS).
        response.set_cookie(
            name,
            serializer.dumps(content),
            domain=domain,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )
        response.vary.add("Cookie")

    # ---- logging in and out ----------------------------------------------------------

    def regenerate(self, session: SessionMixin) -> None:
        """Give the session a fresh id at login; the record it was read from is deleted."""
        self.forget_stored()
        session.sid = self.inner._generate_sid(self.inner.sid_length)  # type: ignore[attr-defined]
        session.modified = True
        request.environ[STARTED] = True

    def forget_stored(self) -> None:
        """Delete the Redis session this request's session was read from, if any."""
        read = request.environ.pop(READ_FROM, None)
        if read is None:
            return
        sid, user_id = read
        with self.client.pipeline() as pipe:
            pipe.delete(self.inner._get_store_id(sid))
            if user_id is not None:
                pipe.zrem(USER_SESSIONS_PREFIX + str(user_id), sid)
            pipe.execute()

    def enter(self, app: Flask, user_id: str, sid: str) -> None:
        """Record a login's session among its user's and end the oldest past the cap."""
        key = USER_SESSIONS_PREFIX + user_id
        with self.client.pipeline() as pipe:
            pipe.zadd(key, {sid: time.time()})
            # The list outlives every session in it: each got at most this long to live.
            pipe.expire(key, self.lifetime_seconds(app))
            pipe.zrange(key, 0, -1)
            members = [m.decode() for m in pipe.execute()[-1]]
        # Sessions that ended without a request (expired in Redis) are still listed: only
        # live ones count. The list holds at most the cap and this login, so checking
        # each is a handful of commands in one round trip.
        with self.client.pipeline() as pipe:
            for member in members:
                pipe.exists(self.inner._get_store_id(member))
            alive = pipe.execute()
        live = [m for m, found in zip(members, alive, strict=True) if found]
        dead = [m for m, found in zip(members, alive, strict=True) if not found]
        cap = int(app.config["SESSION_MAX_PER_USER"])
        # Two logins of one user at the same instant may each keep one more: the next
        # login trims again.
        evicted = live[:-cap] if len(live) > cap else []
        if not (dead or evicted):
            return
        with self.client.pipeline() as pipe:
            if evicted:
                pipe.delete(*(self.inner._get_store_id(m) for m in evicted))
            pipe.zrem(key, *dead, *evicted)
            pipe.execute()

    def end_sessions(self, user_id: int, keep: str | None) -> None:
        """Delete every stored session of the user but `keep` (a password was changed).

        Their session generation was raised already, which voids them on their next
        request; deleting them here frees Redis and their places under the cap at once.
        """
        key = USER_SESSIONS_PREFIX + str(user_id)
        members: list[bytes] = self.client.zrange(key, 0, -1)  # type: ignore[assignment]
        others = [m.decode() for m in members if m.decode() != keep]
        if not others:
            return
        with self.client.pipeline() as pipe:
            pipe.delete(*(self.inner._get_store_id(m) for m in others))
            pipe.zrem(key, *others)
            pipe.execute()

    # ---- helpers ---------------------------------------------------------------------

    @property
    def client(self) -> Redis:
        """The Redis client Flask-Session stores sessions with."""
        client: Redis = self.inner.client
        return client

    @staticmethod
    def lifetime_seconds(app: Flask) -> int:
        """SESSION_LIFETIME_DAYS in seconds."""
        return int(app.permanent_session_lifetime.total_seconds())


def contents(session: SessionMixin) -> dict[str, Any]:
    """The session's values, read as a plain dict: the store's own reads do not count as
    the view's (Flask-Session adds `Vary: Cookie` when a view read the session)."""
    return dict(session.items())


def refuse_without_session_store() -> None:
    """Raise the Redis error a request met opening its session, inside the view stage."""
    error = request.environ.get(STORE_ERROR)
    # Static files need no session: the stylesheet of the page that says Redis is away loads.
    if error is not None and not (request.endpoint or "").endswith("static"):
        raise error


def regenerate(session: SessionMixin) -> None:
    """Give the current session a fresh id (at login)."""
    cast(TieredSessions, current_app.session_interface).regenerate(session)


def end_sessions(user_id: int, keep: str | None) -> None:
    """Delete every stored session of the user but the one whose id is `keep`."""
    cast(TieredSessions, current_app.session_interface).end_sessions(user_id, keep)


def current_id(session: SessionMixin) -> str | None:
    """The id of the stored session a request holds (None for a visitor's cookie session)."""
    sid = getattr(session, "sid", None)
    return str(sid) if sid is not None else None


def init_app(app: Flask) -> None:
    """Wrap the session interface Flask-Session installed; check first in every request."""
    app.session_interface = TieredSessions(app.session_interface)
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_without_session_store)
