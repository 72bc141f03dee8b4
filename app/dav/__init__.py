"""WebDAV at `/dav/`: WsgiDAV over Coffer's own use cases (provider.py), its locks and dead
properties kept per organization (stores.py), behind the gate that authenticates each
request (gate.py). Mounted on the same server and port as the API and the pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from ..libc import READ_BUFFER
from .gate import Gate
from .provider import CofferProvider
from .stores import OrganizationLocks, PropertyStore

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

# Where WebDAV is served.
MOUNT = "/dav"
# Bytes read from a PUT's body and written to storage at a time.
BLOCK_SIZE = READ_BUFFER


def dav_app(provider: CofferProvider) -> WsgiDAVApp:
    """WsgiDAV configured for Coffer: one share at the mount, authentication left to the gate,
    no directory pages, locks in Redis and dead properties in the database."""
    config = {
        "mount_path": MOUNT,
        "provider_mapping": {"/": provider},
        "lock_storage": OrganizationLocks(),
        "property_manager": PropertyStore(),
        # The gate authenticates; WsgiDAV's own authenticator and directory browser are left out.
        "middleware_stack": [ErrorPrinter, RequestResolver],
        "http_authenticator": {
            "domain_controller": None,
            "accept_basic": True,
            "accept_digest": False,
        },
        "simple_dc": {"user_mapping": {"*": True}},
        "block_size": BLOCK_SIZE,
        "verbose": 1,
        "logging": {"enable": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": True,
        "dir_browser": {"enable": False},
    }
    return WsgiDAVApp(config)


def mount(app: Flask, wsgi: WSGIApplication) -> WSGIApplication:
    """`wsgi` (the Flask app's) with WebDAV served at /dav beside it: a GET or HEAD of a
    file answered by the gate as the API's downloads are (reading.py), all else by WsgiDAV."""
    provider = CofferProvider()
    return DispatcherMiddleware(wsgi, {MOUNT: Gate(app, dav_app(provider), provider)})
