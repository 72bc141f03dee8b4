"""A PROPFIND of Depth 1 of a folder, answered from its listing: the members' rows read in
one query (files/tree.py), their dead properties and locks read at once (stores.prefetch),
and the multistatus written as text. WsgiDAV's own PROPFIND asks each member for each
property and builds the answer as an element tree: over a second for 10,000 files, most of
it spent per member. What this does not know how to answer (a member's locks, a dead
property's value) it still asks WsgiDAV's resource for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from wsgidav import util, xml_tools
from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_NOT_FOUND, DAVError
from wsgidav.lock_man.lock_manager import normalize_lock_root

from . import stores

if TYPE_CHECKING:
    from .provider import Document, Place

# Headers that make a PROPFIND conditional: left to WsgiDAV, which evaluates them.
CONDITIONS = (
    "HTTP_IF",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
DAV = "{DAV:}"
RESOURCETYPE = DAV + "resourcetype"
LOCKDISCOVERY = DAV + "lockdiscovery"
SUPPORTEDLOCK = DAV + "supportedlock"
# The properties a resource lists in `allprop` and `propname` (besides its dead ones), in
# WsgiDAV's order; a folder's quota, a file's length and type.
PLACE_NAMES = (
    RESOURCETYPE,
    DAV + "creationdate",
    DAV + "quota-used-bytes",
    DAV + "quota-available-bytes",
    DAV + "getlastmodified",
    DAV + "displayname",
    LOCKDISCOVERY,
    SUPPORTEDLOCK,
)
TOP_NAMES = tuple(
    name for name in PLACE_NAMES if name not in (DAV + "creationdate", DAV + "getlastmodified")
)
DOCUMENT_NAMES = (
    RESOURCETYPE,
    DAV + "creationdate",
    DAV + "getcontentlength",
    DAV + "getcontenttype",
    DAV + "getlastmodified",
    DAV + "displayname",
    DAV + "getetag",
    LOCKDISCOVERY,
    SUPPORTEDLOCK,
)
OK = "200 OK"
NOT_FOUND = util.get_http_status_string(DAVError(HTTP_NOT_FOUND))
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Raw(str):
    """A property's whole element, already written."""


COLLECTION = Raw("<D:resourcetype><D:collection/></D:resourcetype>")
NO_LOCKS = Raw("<D:lockdiscovery/>")
SUPPORTED = Raw(
    "<D:supportedlock>"
    + "".join(
        f"<D:lockentry><D:lockscope><D:{scope}/></D:lockscope>"
        "<D:locktype><D:write/></D:locktype></D:lockentry>"
        for scope in ("exclusive", "shared")
    )
    + "</D:supportedlock>"
)


def rfc1123(moment: datetime) -> str:
    """`getlastmodified` of a naive UTC time, as WsgiDAV writes it (an HTTP date)."""
    return (
        f"{WEEKDAYS[moment.weekday()]}, {moment.day:02d} {MONTHS[moment.month - 1]} "
        f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT"
    )


def rfc3339(moment: datetime) -> str:
    """`creationdate` of a naive UTC time, as WsgiDAV writes it."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def handles(environ: dict[str, Any]) -> bool:
    """Whether a request is an unconditional PROPFIND of Depth 1 (of what, the caller
    checks)."""
    return (
        environ.get("REQUEST_METHOD") == "PROPFIND"
        and environ.get("HTTP_DEPTH") == "1"
        and not any(environ.get(header) for header in CONDITIONS)
    )


def asked(environ: dict[str, Any]) -> tuple[str, list[str]]:
    """The PROPFIND's mode (`allprop`, `name` or `named`) and the names it asks for, as
    WsgiDAV reads them (an empty body asks for all)."""
    body = util.parse_xml_body(environ, allow_empty=True)
    if body is None:
        return "allprop", []
    if body.tag != "{DAV:}propfind":
        raise DAVError(HTTP_BAD_REQUEST)
    mode: str | None = None
    names: list[str] = []
    for node in body:
        if node.tag == "{DAV:}allprop":
            if mode:
                raise DAVError(HTTP_BAD_REQUEST)
            mode = "allprop"
        elif node.tag == "{DAV:}name":
            if mode:
                raise DAVError(HTTP_BAD_REQUEST)
            mode = "name"
        elif node.tag == "{DAV:}prop":
            if mode not in (None, "named"):
                raise DAVError(HTTP_BAD_REQUEST)
            mode = "named"
            names.extend(child.tag for child in node)
    return mode or "named", names


class Listing:
    """What every member's properties are read from: the prefetch and the quota, once."""

    def __init__(self, place: Place, known: stores.Known | None) -> None:
        self.place = place
        self.known = known
        self._usage: tuple[int, int] | None = None

    def usage(self) -> tuple[int, int]:
        """The organization's used and available bytes, read once for all folders."""
        if self._usage is None:
            self._usage = (self.place.get_used_bytes(), self.place.get_available_bytes())
        return self._usage

    def dead(self, url: str) -> list[tuple[str, str]] | None:
        """A member's dead properties (names and stored values), if prefetched."""
        if self.known is None:
            return None
        return self.known.properties.get(url)

    def locked(self, url: str) -> bool:
        """Whether a member has a direct lock (unknown: assume so, and ask WsgiDAV)."""
        if self.known is None:
            return True
        return bool(self.known.locks.get(normalize_lock_root(url)))

    def properties(self, res: Place | Document, mode: str, names: list[str]) -> list[Any]:
        """A resource's (name, value) pairs, as WsgiDAV's `get_properties` gives them."""
        from .provider import Place

        url = res.get_ref_url()
        dead = self.dead(url)
        if dead is None:
            dead = [(name, "") for name in res.provider.prop_manager.get_properties(url)]
        if mode in ("allprop", "name"):
            if isinstance(res, Place):
                names = list(PLACE_NAMES if res.folder is not None else TOP_NAMES)
            else:
                names = list(DOCUMENT_NAMES)
            names.extend(name for name, _value in dead)
            if mode == "name":
                return [(name, None) for name in names]
        values = self.values_of(res, url, dict(dead))
        pairs: list[Any] = []
        for name in names:
            value = values(name)
            pairs.append((name, value))
        return pairs

    def plain_file(self, res: Place | Document, mode: str) -> str | None:
        """A file's whole `<response>` to `allprop`, written at once, when it has neither a
        dead property nor a lock, as most members of a listing do; None otherwise (the
        general path answers). The same text `response(properties(...))` writes, without
        the per-property calls that made a listing of 10,000 files take half a second."""
        from .provider import Document

        if mode != "allprop" or self.known is None or not isinstance(res, Document):
            return None
        url = res.get_ref_url()
        if self.dead(url) != [] or self.locked(url):
            return None
        entry = res.entry
        modified = entry.modified
        return (
            f"<D:response><D:href>{escape(res.get_href())}</D:href>"
            "<D:propstat><D:prop><D:resourcetype/>"
            # Dates and a length are never empty and hold nothing to escape.
            f"<D:creationdate>{rfc3339(modified)}</D:creationdate>"
            f"<D:getcontentlength>{entry.size}</D:getcontentlength>"
            f"{text_element('D:getcontenttype', res.get_content_type())}"
            f"<D:getlastmodified>{rfc1123(modified)}</D:getlastmodified>"
            f"<D:displayname>{escape(entry.name)}</D:displayname>"
            f"{text_element('D:getetag', res.get_etag())}"
            f"{NO_LOCKS}{SUPPORTED}"
            f"</D:prop><D:status>HTTP/1.1 {OK}</D:status></D:propstat></D:response>"
        )

    def values_of(
        self, res: Place | Document, url: str, dead: dict[str, str]
    ) -> Callable[[str], Any]:
        """How one resource answers each property name."""
        from .provider import Place

        live: dict[str, Any] = {SUPPORTEDLOCK: SUPPORTED}
        if isinstance(res, Place):
            live[RESOURCETYPE] = COLLECTION
            live[DAV + "displayname"] = res.get_display_name()
            used, available = self.usage()
            live[DAV + "quota-used-bytes"] = str(used)
            live[DAV + "quota-available-bytes"] = str(available)
            if res.folder is not None:
                live[DAV + "creationdate"] = rfc3339(res.folder.created_at)
                live[DAV + "getlastmodified"] = rfc1123(res.folder.created_at)
        else:
            entry = res.entry
            live[RESOURCETYPE] = ""
            live[DAV + "displayname"] = entry.name
            live[DAV + "creationdate"] = rfc3339(entry.modified)
            live[DAV + "getlastmodified"] = rfc1123(entry.modified)
            live[DAV + "getcontentlength"] = str(entry.size)
            live[DAV + "getcontenttype"] = res.get_content_type()
            live[DAV + "getetag"] = res.get_etag()
        if not self.locked(url):
            live[LOCKDISCOVERY] = NO_LOCKS

        def value(name: str) -> Any:
            if name in live:
                return live[name]
            if name == LOCKDISCOVERY or name in dead:
                try:
                    return res.get_property_value(name)
                except DAVError as refused:
                    return refused
            return DAVError(HTTP_NOT_FOUND)

        return value


@lru_cache(maxsize=1024)
def tag_of(name: str) -> tuple[str, str]:
    """The tag a property's element is written with, and the namespace it declares."""
    namespace, local = util.split_namespace(name)
    if namespace == "DAV:":
        return "D:" + local, ""
    if namespace:
        return "X:" + local, " xmlns:X=" + quoteattr(namespace)
    return local, ""


def element(name: str, value: Any) -> str:
    """One property's element."""
    if isinstance(value, Raw):
        return value
    if value is not None and not isinstance(value, str):
        text: str = xml_tools.etree.tostring(value, encoding="unicode")
        return text
    tag, declared = tag_of(name)
    return text_element(tag, value, declared)


def text_element(tag: str, value: str | None, declared: str = "") -> str:
    """An element holding text (empty when there is none)."""
    if not value:
        return f"<{tag}{declared}/>"
    return f"<{tag}{declared}>{escape(value)}</{tag}>"


def response(href: str, pairs: Iterable[tuple[str, Any]]) -> str:
    """One resource's `<response>`: its properties grouped by status."""
    by_status: dict[str, list[str]] = {}
    for name, value in pairs:
        if isinstance(value, DAVError):
            by_status.setdefault(util.get_http_status_string(value), []).append(element(name, None))
        else:
            by_status.setdefault(OK, []).append(element(name, value))
    parts = [f"<D:response><D:href>{escape(href)}</D:href>"]
    for status, elements in by_status.items():
        parts.append("<D:propstat><D:prop>")
        parts.extend(elements)
        parts.append(f"</D:prop><D:status>HTTP/1.1 {status}</D:status></D:propstat>")
    parts.append("</D:response>")
    return "".join(parts)


def listing(
    place: Place, environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes]:
    """The multistatus of a PROPFIND of Depth 1 of a folder: itself, then its members."""
    mode, names = asked(environ)
    members = place.get_member_list()
    found = Listing(place, stores.known())
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">']
    for res in (place, *members):
        written = found.plain_file(res, mode)
        if written is None:
            written = response(res.get_href(), found.properties(res, mode, names))
        parts.append(written)
    parts.append("</D:multistatus>")
    body = "".join(parts).encode("utf-8")
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Date", util.get_rfc1123_time()),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
