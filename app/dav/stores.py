"""Where WebDAV's locks and dead properties are kept: locks in Redis, dead properties in the
database, each under the organization of the request, so they hold across threads and
hosts and one organization's paths never meet another's."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, g
from redis import Redis
from sqlalchemy import delete, select
from wsgidav import util
from wsgidav.lock_man.lock_manager import (
    generate_lock_token,
    is_lock_expired,
    normalize_lock_root,
    validate_lock,
)

from ..database import write_transaction
from ..extensions import db
from ..models import DavProperty
from ..services.tenancy import in_organization, scoped

# Locks no longer than this (WsgiDAV's own cap: a month); an infinite timeout gets it.
LOCK_TIMEOUT_MAX = 4 * 604800


def organization_id() -> int:
    """The organization of the request being served (set by the gate)."""
    return int(g.dav_user.organization_id)


@dataclass(frozen=True)
class Known:
    """What a PROPFIND read at once of its members: their dead properties (name and stored
    value) and their direct locks, by each member's reference URL (quoted, as WsgiDAV keys
    them) and lock root."""

    properties: dict[str, list[tuple[str, str]]]
    locks: dict[str, list[dict[str, Any]]]


def prefetch(environ: dict[str, Any], urls: list[str], under: str) -> Known | None:
    """Read the dead properties and direct locks of a collection's members at once (the
    members a PROPFIND lists): one query of the properties below `under` (the collection's
    reference URL), one Redis round trip for the organization's locks, so no member costs a
    query of its own. Only a PROPFIND uses them (kept on the request's `g`): it changes
    nothing while they are held."""
    if environ.get("REQUEST_METHOD") != "PROPFIND" or not urls:
        return None
    org = organization_id()
    wanted = set(urls)
    properties: dict[str, list[tuple[str, str]]] = {url: [] for url in urls}
    rows = db.session.execute(
        select(DavProperty.url, DavProperty.name, DavProperty.value)
        .where(in_organization(DavProperty, org), _at(under, True))
        .order_by(DavProperty.name)
    )
    for url, name, value in rows:
        if url in wanted:
            properties[url].append((name, value))
    locks: dict[str, list[dict[str, Any]]] = {}
    for lock in OrganizationLocks().live_locks().values():
        locks.setdefault(lock["root"], []).append(lock)
    known = Known(properties, locks)
    g.dav_known = known
    return known


def known() -> Known | None:
    """What this request's PROPFIND read at once, if it did."""
    found: Known | None = g.get("dav_known")
    return found


def _encoded(lock: dict[str, Any]) -> str:
    """A lock as kept in Redis: JSON, its owner (WsgiDAV's XML bytes) as text."""
    return json.dumps({**lock, "owner": lock["owner"].decode("utf-8")})


def _decoded(raw: bytes | str) -> dict[str, Any]:
    """A lock as WsgiDAV holds it."""
    lock: dict[str, Any] = json.loads(raw)
    lock["owner"] = lock["owner"].encode("utf-8")
    return lock


class OrganizationLocks:
    """WsgiDAV's lock storage interface over the app's Redis, indexed per organization:
    the hash `coffer:dav:<organization>:locks` holds each lock (by token) and the sorted
    set `...:expiry` each token's expiry. Every lookup reads these two keys (the locks
    of one organization, which clients hold few of), never the keyspace; an expired lock
    is dropped from both as soon as a lookup meets it, and both keys expire with their
    last lock."""

    def __repr__(self) -> str:
        return "OrganizationLocks()"

    @property
    def _redis(self) -> Redis:
        return current_app.extensions["redis"]  # type: ignore[no-any-return]

    @staticmethod
    def _keys() -> tuple[str, str]:
        """The organization's lock hash and expiry set."""
        prefix = f"coffer:dav:{organization_id()}"
        return f"{prefix}:locks", f"{prefix}:expiry"

    def open(self) -> None:
        """The app's client is always open."""

    def close(self) -> None:
        """The app's client outlives WsgiDAV."""

    def cleanup(self) -> None:
        """Expired locks are dropped by the lookups that meet them."""

    def clear(self) -> None:
        """Remove every lock of the organization."""
        self._changed()
        self._redis.delete(*self._keys())

    def live_locks(self) -> dict[str, dict[str, Any]]:
        """The organization's locks that have not expired, by token: read once per request
        (a PUT asks for them five or six times: the path, its parent, the If header, the
        write check), again after this request changes one. One round trip; another to drop
        the expired ones when there are any."""
        read: dict[str, dict[str, Any]] | None = g.get("dav_live_locks")
        if read is None:
            read = g.dav_live_locks = self._read_live_locks()
        return read

    @staticmethod
    def _changed() -> None:
        """This request changed a lock: its next lookup reads them again."""
        g.pop("dav_live_locks", None)

    def _read_live_locks(self) -> dict[str, dict[str, Any]]:
        """The organization's locks that have not expired, read from Redis."""
        locks_key, expiry_key = self._keys()
        now = time.time()
        pipeline = self._redis.pipeline(transaction=False)
        pipeline.hgetall(locks_key)
        pipeline.zrangebyscore(expiry_key, "-inf", now)
        raw_locks, expired = pipeline.execute()
        gone = {token.decode("utf-8") for token in expired}
        live: dict[str, dict[str, Any]] = {}
        for raw in raw_locks.values():
            lock = _decoded(raw)
            if lock["token"] in gone or 0 <= float(lock["expire"]) < now:
                gone.add(lock["token"])
                continue
            live[lock["token"]] = lock
        if gone:
            self._forget(gone)
        return live

    def _forget(self, tokens: set[str]) -> None:
        """Drop these tokens' locks from the index."""
        self._changed()
        locks_key, expiry_key = self._keys()
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.hdel(locks_key, *tokens)
        pipeline.zrem(expiry_key, *tokens)
        pipeline.execute()

    def _keep(self, lock: dict[str, Any]) -> None:
        """Write a lock into the index; both keys live until its last lock expires."""
        self._changed()
        locks_key, expiry_key = self._keys()
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.hset(locks_key, lock["token"], _encoded(lock))
        pipeline.zadd(expiry_key, {lock["token"]: float(lock["expire"])})
        pipeline.zrange(expiry_key, -1, -1, withscores=True)
        *_, last = pipeline.execute()
        until = math.ceil(last[0][1]) + 1
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.expireat(locks_key, until)
        pipeline.expireat(expiry_key, until)
        pipeline.execute()

    def get(self, token: str) -> dict[str, Any] | None:
        """The lock of a token; None when there is none or it has expired (then it is
        dropped)."""
        locks_key, _expiry_key = self._keys()
        raw = self._redis.hget(locks_key, token)
        if raw is None:
            return None
        lock = _decoded(raw)
        if is_lock_expired(lock):
            self._forget({token})
            return None
        return lock

    def create(self, path: str, lock: dict[str, Any]) -> dict[str, Any]:
        """A new direct lock on a path (WsgiDAV's contract: the root normalized, the
        timeout capped, the token and expiry added)."""
        assert lock.get("token") is None and lock.get("expire") is None
        lock["root"] = normalize_lock_root(path)
        timeout = float(lock["timeout"])
        if timeout < 0 or timeout > LOCK_TIMEOUT_MAX:
            timeout = LOCK_TIMEOUT_MAX
        lock["timeout"] = timeout
        lock["expire"] = time.time() + timeout
        validate_lock(lock)
        lock["token"] = generate_lock_token()
        self._keep(lock)
        return lock

    def refresh(self, token: str, *, timeout: float) -> dict[str, Any]:
        """The lock of a token with a new timeout."""
        lock = self.get(token)
        if lock is None:
            raise ValueError(f"no lock {token!r}")
        if timeout < 0 or timeout > LOCK_TIMEOUT_MAX:
            timeout = LOCK_TIMEOUT_MAX
        lock["timeout"] = timeout
        lock["expire"] = time.time() + timeout
        self._keep(lock)
        return lock

    def delete(self, token: str) -> bool:
        """Remove a lock; False when there was none."""
        self._changed()
        locks_key, expiry_key = self._keys()
        pipeline = self._redis.pipeline(transaction=True)
        pipeline.hdel(locks_key, token)
        pipeline.zrem(expiry_key, token)
        removed, _ = pipeline.execute()
        return bool(removed)

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        """The direct locks on a path and/or below it (WsgiDAV's contract), from the
        PROPFIND's prefetch when it read them."""
        root = normalize_lock_root(path)
        seen = known()
        if seen is not None and include_root and not include_children:
            locks = list(seen.locks.get(root, []))
        else:
            locks = [
                lock
                for lock in self.live_locks().values()
                if (include_root and lock["root"] == root)
                or (include_children and util.is_child_uri(root, lock["root"]))
            ]
        return [lock["token"] for lock in locks] if token_only else locks


class PropertyStore:
    """WsgiDAV's property manager interface over the `dav_properties` table."""

    def __repr__(self) -> str:
        return "PropertyStore()"

    def get_properties(self, norm_url: str, environ: Any = None) -> list[str]:
        """The names of the dead properties of a resource."""
        seen = known()
        if seen is not None and norm_url in seen.properties:
            return [name for name, _value in seen.properties[norm_url]]
        query = scoped(DavProperty, organization_id()).where(DavProperty.url == norm_url)
        return [row.name for row in db.session.scalars(query.order_by(DavProperty.name))]

    def get_property(self, norm_url: str, name: str, environ: Any = None) -> bytes | None:
        """One dead property's value (its XML), or None."""
        seen = known()
        if seen is not None and norm_url in seen.properties:
            values = dict(seen.properties[norm_url])
            return values[name].encode("utf-8") if name in values else None
        query = scoped(DavProperty, organization_id()).where(
            DavProperty.url == norm_url, DavProperty.name == name
        )
        row = db.session.scalars(query).first()
        return None if row is None else row.value.encode("utf-8")

    def write_property(
        self,
        norm_url: str,
        name: str,
        property_value: str | bytes,
        dry_run: bool = False,
        environ: Any = None,
    ) -> None:
        """Set a dead property (replacing its value)."""
        if dry_run:
            return
        # WsgiDAV passes the element as serialized bytes: kept as text, read back as bytes.
        if isinstance(property_value, bytes):
            property_value = property_value.decode("utf-8")
        org = organization_id()
        with write_transaction() as session:
            session.execute(
                delete(DavProperty).where(
                    in_organization(DavProperty, org),
                    DavProperty.url == norm_url,
                    DavProperty.name == name,
                )
            )
            session.add(
                DavProperty(organization_id=org, url=norm_url, name=name, value=property_value)
            )

    def remove_property(
        self, norm_url: str, name: str, dry_run: bool = False, environ: Any = None
    ) -> None:
        """Remove one dead property (a missing one is fine)."""
        if dry_run:
            return
        with write_transaction() as session:
            session.execute(
                delete(DavProperty).where(
                    in_organization(DavProperty, organization_id()),
                    DavProperty.url == norm_url,
                    DavProperty.name == name,
                )
            )

    def remove_properties(self, norm_url: str, environ: Any = None) -> None:
        """Remove every dead property of a resource and of the resources below it."""
        with write_transaction() as session:
            session.execute(
                delete(DavProperty).where(
                    in_organization(DavProperty, organization_id()),
                    _at(norm_url, True),
                )
            )

    def copy_properties(self, src_url: str, dest_url: str, environ: Any = None) -> None:
        """Give the copy at `dest_url` the dead properties of `src_url`."""
        org = organization_id()
        with write_transaction() as session:
            rows = session.execute(
                select(DavProperty.name, DavProperty.value).where(
                    in_organization(DavProperty, org), DavProperty.url == src_url
                )
            ).all()
            session.execute(
                delete(DavProperty).where(
                    in_organization(DavProperty, org), DavProperty.url == dest_url
                )
            )
            for name, value in rows:
                session.add(DavProperty(organization_id=org, url=dest_url, name=name, value=value))

    def move_properties(
        self, src_url: str, dest_url: str, with_children: bool, environ: Any = None
    ) -> None:
        """Carry the dead properties of a moved resource (and those below it) along."""
        org = organization_id()
        with write_transaction() as session:
            session.execute(
                delete(DavProperty).where(in_organization(DavProperty, org), _at(dest_url, True))
            )
            rows = list(
                session.scalars(scoped(DavProperty, org).where(_at(src_url, with_children)))
            )
            for row in rows:
                row.url = dest_url + row.url[len(src_url) :]


def _at(url: str, with_children: bool) -> Any:
    """The properties of the resource at `url`, and with `with_children` those below it."""
    if not with_children:
        return DavProperty.url == url
    below = url.rstrip("/") + "/"
    return (DavProperty.url == url) | DavProperty.url.startswith(below, autoescape=True)
