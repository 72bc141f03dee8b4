"""Where WebDAV's locks and dead properties are kept: locks in Redis, dead properties in the
database, each under the organization of the request, so they hold across threads and
hosts and one organization's paths never meet another's."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from redis import Redis
from sqlalchemy import delete, select
from wsgidav.lock_man.lock_storage import normalize_lock_root
from wsgidav.lock_man.lock_storage_redis import LockStorageRedis

from ..database import write_transaction
from ..extensions import db
from ..models import DavProperty
from ..services.tenancy import in_organization, scoped

# Resources whose properties one query reads, in a PROPFIND's prefetch.
PREFETCH_BATCH = 500


def organization_id() -> int:
    """The organization of the request being served (set by the gate)."""
    return int(g.dav_user.organization_id)


def prefetch(environ: dict[str, Any], urls: list[str]) -> None:
    """Read the dead property names and the direct locks of many resources at once (the
    members a PROPFIND lists), so each member costs no query of its own. Only a PROPFIND
    uses them (kept on the request's `g`): it changes nothing while they are held."""
    if environ.get("REQUEST_METHOD") != "PROPFIND" or not urls:
        return
    org = organization_id()
    names: dict[str, list[str]] = {url: [] for url in urls}
    for start in range(0, len(urls), PREFETCH_BATCH):
        batch = urls[start : start + PREFETCH_BATCH]
        rows = db.session.execute(
            select(DavProperty.url, DavProperty.name)
            .where(in_organization(DavProperty, org), DavProperty.url.in_(batch))
            .order_by(DavProperty.name)
        )
        for url, name in rows:
            names[url].append(name)
    roots = [normalize_lock_root(url) for url in urls]
    pipeline = current_app.extensions["redis"].pipeline(transaction=False)
    for root in roots:
        pipeline.lrange(f"coffer:dav:{org}:URL2TOKEN:{root}", 0, -1)
    tokens = dict(zip(roots, pipeline.execute(), strict=True))
    g.dav_properties = names
    g.dav_locks = tokens


class OrganizationLocks(LockStorageRedis):  # type: ignore[misc]
    """WsgiDAV's Redis lock storage on the app's Redis, its keys under the organization:
    `coffer:dav:<organization>:lock:<token>` and `...:URL2TOKEN:<path>`."""

    def __init__(self) -> None:
        # Not LockStorageRedis.__init__: the client and the prefixes are the request's.
        pass

    def __repr__(self) -> str:
        return "OrganizationLocks()"

    @property
    def _redis(self) -> Redis:
        return current_app.extensions["redis"]  # type: ignore[no-any-return]

    @property
    def _redis_prefix(self) -> str:
        return f"coffer:dav:{organization_id()}:{{}}"

    @property
    def _redis_lock_prefix(self) -> str:
        return self._redis_prefix.format("lock:{}")

    @property
    def _redis_url2token_prefix(self) -> str:
        return self._redis_prefix.format("URL2TOKEN:{}")

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        """The direct locks of a path (WsgiDAV's), from the PROPFIND's prefetch when it read
        them."""
        known = g.get("dav_locks") if not include_children else None
        root = normalize_lock_root(path)
        if known is None or root not in known or not include_root:
            return list(
                super().get_lock_list(
                    path,
                    include_root=include_root,
                    include_children=include_children,
                    token_only=token_only,
                )
            )
        locks: list[Any] = []
        for raw in known[root]:
            lock = self.get(raw.decode("utf-8"))
            if lock is not None:
                locks.append(lock["token"] if token_only else lock)
        return locks

    def _flush(self) -> None:
        """Redis writes as it goes: nothing to flush."""

    def open(self) -> None:
        """The app's client is always open."""

    def close(self) -> None:
        """The app's client outlives WsgiDAV."""


class PropertyStore:
    """WsgiDAV's property manager interface over the `dav_properties` table."""

    def __repr__(self) -> str:
        return "PropertyStore()"

    def get_properties(self, norm_url: str, environ: Any = None) -> list[str]:
        """The names of the dead properties of a resource."""
        known = g.get("dav_properties")
        if known is not None and norm_url in known:
            return list(known[norm_url])
        query = scoped(DavProperty, organization_id()).where(DavProperty.url == norm_url)
        return [row.name for row in db.session.scalars(query.order_by(DavProperty.name))]

    def get_property(self, norm_url: str, name: str, environ: Any = None) -> bytes | None:
        """One dead property's value (its XML), or None."""
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
