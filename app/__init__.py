"""Coffer: a multi-tenant file API. `create_app` is the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    authentication,
    broker,
    cors,
    database,
    dav,
    limits,
    logs,
    metrics,
    middleware,
    session_store,
    storage,
)
from .config import load_config
from .errors import register_error_handlers
from .extensions import db, migrate, server_session
from .method_override import MethodOverride
from .multipart import CofferRequest, discard_unaccepted
from .share_negotiation import ShareNegotiation


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app for APP_ENV, with `overrides` applied over the environment."""
    config = load_config(overrides)
    # The web blueprint serves the static files; the app itself has none of its own.
    app = Flask(__name__, instance_path=str(config["INSTANCE_PATH"]), static_folder=None)
    app.request_class = CofferRequest
    app.config.from_mapping(config)
    logs.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    middleware.init_app(app)
    register_commands(app)
    app.wsgi_app = MethodOverride(app.wsgi_app)  # type: ignore[method-assign]
    # A browser's visit to a share link is routed to its page; downloads stay the API's.
    app.wsgi_app = ShareNegotiation(app.wsgi_app)  # type: ignore[method-assign]
    # WebDAV at /dav, on the same server: WsgiDAV beside Flask, in Flask's context.
    app.wsgi_app = dav.mount(app, app.wsgi_app)  # type: ignore[method-assign, assignment]
    if app.config["TRUSTED_PROXIES"]:
        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


def register_extensions(app: Flask) -> None:
    """Bind every extension to the app."""
    database.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    broker.init_app(app)
    storage.init_app(app)
    server_session.init_app(app)
    session_store.init_app(app)
    authentication.init_app(app)
    limits.init_app(app)
    cors.init_app(app)
    # Before any blueprint: the process's metrics directory is set before anything counts.
    metrics.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Mount the HTTP blueprints, their `int` and `id` numbers held to ASCII digits."""
    from .api import auth as auth_api
    from .api import (
        files,
        health,
        links,
        metrics,
        openapi,
        org,
        tokens,
        uploads,
        versions,
        webhooks,
    )
    from .api import folders as folders_api
    from .api import trash as trash_api
    from .api.inputs import AsciiIntegerConverter, IdConverter
    from .web import bp as web

    app.url_map.converters["int"] = AsciiIntegerConverter
    # Every route with a database id takes it through `<id:...>`: an id out of range is a 404.
    app.url_map.converters["id"] = IdConverter
    for module in (
        auth_api,
        org,
        webhooks,
        tokens,
        files,
        versions,
        links,
        uploads,
        folders_api,
        trash_api,
        health,
        metrics,
        openapi,
    ):
        app.register_blueprint(module.bp)
    # Zip downloads of folders and selections.
    from .api import archives

    app.register_blueprint(archives.bp)
    from .api import activity

    app.register_blueprint(activity.bp)
    from .api import requests as requests_api

    app.register_blueprint(requests_api.bp)
    app.register_blueprint(web)
    app.teardown_request(discard_unaccepted)


def register_commands(app: Flask) -> None:
    """Add Coffer's CLI command groups."""
    from . import cli

    cli.init_app(app)
