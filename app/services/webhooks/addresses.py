"""Where a webhook URL may lead: http(s) to public addresses only, its host resolved within
a bound (WEBHOOK_RESOLVE_SECONDS) and every address checked."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import current_app

from ..errors import InvalidInput


@dataclass(frozen=True)
class Target:
    """Where a webhook URL leads: the addresses checked, and what to send them."""

    scheme: str
    host: str
    port: int
    # The Host header: the URL's host, with its port when it is not the scheme's default.
    host_header: str
    # Path and query, as the request line carries them.
    path: str
    addresses: tuple[str, ...]


def refused(message: str) -> InvalidInput:
    """The refusal of a webhook URL."""
    return InvalidInput("url_not_allowed", message, field="url")


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    multicast, reserved, unspecified, shared (CGNAT), documentation or the like.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64) is public
    only if the IPv4 address inside is.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner: ipaddress.IPv4Address | None = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo is not None:
            inner = address.teredo[1]
        if inner is None and address in NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None and not is_public_address(inner):
            return False
    return (
        address.is_global
        and not (address.is_multicast or address.is_reserved or address.is_unspecified)
        and not any(address in network for network in NOT_GLOBAL)
    )


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not globally reachable, though `is_global` of the Pythons Coffer runs on (3.11) says so:
# IETF protocol assignments (192.0.0.8-10 among them), the 6to4 relay anycast, the
# deprecated site-local IPv6 range and IPv6's documentation range of RFC 9637.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in ("192.0.0.0/24", "192.88.99.0/24", "fec0::/10", "3fff::/20")
)


# getaddrinfo has no timeout of its own: lookups run on this small pool and are waited for
# at most WEBHOOK_RESOLVE_SECONDS, so a slow DNS server holds no web or worker thread for
# longer, and lookups that hang take at most RESOLVER_THREADS threads.
RESOLVER_THREADS = 4
_resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="coffer-resolve")


def _new_resolvers() -> None:
    """A fresh pool in a forked child: the parent's threads are not there."""
    global _resolvers
    _resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="coffer-resolve")


os.register_at_fork(after_in_child=_new_resolvers)

Result = TypeVar("Result")


def bounded(function: Callable[..., Result], seconds: float, *args: Any) -> Result:
    """`function(*args)` run on the resolver pool; TimeoutError when it takes longer than
    `seconds` (it is left to finish on its own: a thread cannot be stopped)."""
    future = _resolvers.submit(function, *args)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()  # still queued behind hung lookups: never started
        raise TimeoutError(f"no answer in {seconds:g} s") from None


def resolve_target(url: str) -> Target:
    """The URL's parts and every address its host resolves to, each checked; 400
    `url_not_allowed` unless all are public (or WEBHOOK_ALLOW_PRIVATE is set), for port 0,
    and when the lookup takes longer than WEBHOOK_RESOLVE_SECONDS."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused("the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise refused("the URL must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise refused("the URL must not carry a user name or password")
    if port == 0:
        raise refused("the URL's port must not be 0")
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    seconds = current_app.config["WEBHOOK_RESOLVE_SECONDS"]
    try:
        found = bounded(socket.getaddrinfo, seconds, host, port, 0, socket.SOCK_STREAM)
    except TimeoutError:
        raise refused(f"the host {host} did not resolve within {seconds} s") from None
    except (OSError, UnicodeError):
        raise refused(f"the host {host} does not resolve") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    if not current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address)):
                raise refused(
                    f"the host {host} is or resolves to {address}, which is not a public address"
                )
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == default_port else f"{shown_host}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, host_header, path, addresses)
