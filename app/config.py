"""The Flask configuration: the settings of APP_ENV (app/settings.py) as the keys the app
reads, with the values derived from them and the checks across them."""

from __future__ import annotations

import re
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Importable from here too: manage.py, bench/ and the tests take them from app.config.
from .settings import DEFAULT_WEB_THREADS as DEFAULT_WEB_THREADS
from .settings import ConfigError as ConfigError
from .settings import Settings, read_settings

MiB = 1024 * 1024


def database_url(url: str, instance: Path) -> str:
    """DATABASE_URL with the psycopg 3 driver named, or the SQLite default."""
    if not url:
        return f"sqlite:///{instance / 'coffer.db'}"
    # PaaS providers hand out postgres:// or postgresql://; SQLAlchemy needs the driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def flask_config(settings: Settings) -> dict[str, object]:
    """The keys Flask and the app read, from the settings and the defaults derived from them."""
    instance = settings.INSTANCE_PATH
    heartbeat = settings.JOB_HEARTBEAT_SECONDS
    connections_per_address = settings.CONNECTIONS_PER_ADDRESS
    if connections_per_address is None:
        connections_per_address = 0 if settings.TRUSTED_PROXIES else 50
    return {
        "APP_ENV": settings.APP_ENV,
        "TESTING": settings.TESTING,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": settings.SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url(settings.DATABASE_URL, instance),
        "REDIS_URL": settings.REDIS_URL,
        "UPLOAD_FOLDER": str(settings.UPLOAD_FOLDER or (instance / "uploads").resolve()),
        "STORAGE_BACKEND": settings.STORAGE_BACKEND,
        "S3_BUCKET": settings.S3_BUCKET,
        "S3_ENDPOINT_URL": settings.S3_ENDPOINT_URL,
        "S3_REGION": settings.S3_REGION,
        "S3_PREFIX": settings.S3_PREFIX,
        "S3_PRESIGNED_DOWNLOADS": settings.S3_PRESIGNED_DOWNLOADS,
        "S3_PRESIGN_SECONDS": settings.S3_PRESIGN_SECONDS,
        "MAX_FILE_SIZE_MB": settings.MAX_FILE_SIZE_MB,
        "PREVIEW_MAX_PIXELS": settings.PREVIEW_MAX_PIXELS,
        "STORAGE_QUOTA_MB": settings.STORAGE_QUOTA_MB,
        "RESUMABLE_EXPIRY_HOURS": settings.RESUMABLE_EXPIRY_HOURS,
        "TRASH_RETENTION_DAYS": settings.TRASH_RETENTION_DAYS,
        "VERSIONS_KEPT": settings.VERSIONS_KEPT,
        "ACTIVITY_RETENTION_DAYS": settings.ACTIVITY_RETENTION_DAYS,
        "OPEN_JOIN": settings.OPEN_JOIN,
        "INVITE_TTL_HOURS": settings.INVITE_TTL_HOURS,
        "SESSION_LIFETIME_DAYS": settings.SESSION_LIFETIME_DAYS,
        "SESSION_MAX_PER_USER": settings.SESSION_MAX_PER_USER,
        "BCRYPT_ROUNDS": settings.BCRYPT_ROUNDS,
        "PORT": settings.PORT,
        "WEB_THREADS": settings.WEB_THREADS,
        "DELETE_FAILED_FILES": settings.DELETE_FAILED_FILES,
        "JOB_TIMEOUT": settings.JOB_TIMEOUT,
        "JOB_RETRY_INTERVALS": list(settings.JOB_RETRY_INTERVALS),
        "JOB_HEARTBEAT_SECONDS": heartbeat,
        # Three missed heartbeats by default.
        "JOB_STALE_SECONDS": settings.JOB_STALE_SECONDS or 3 * heartbeat,
        "SWEEP_SECONDS": settings.SWEEP_SECONDS,
        "WORKERS": settings.WORKERS,
        "HOST": settings.HOST,
        "LOGIN_LIMIT_PER_EMAIL": settings.LOGIN_LIMIT_PER_EMAIL,
        "LOGIN_LIMIT_PER_ADDRESS": settings.LOGIN_LIMIT_PER_ADDRESS,
        "REGISTER_LIMIT_PER_ADDRESS": settings.REGISTER_LIMIT_PER_ADDRESS,
        "SHARE_LIMIT_PER_ADDRESS": settings.SHARE_LIMIT_PER_ADDRESS,
        "REQUEST_LIMIT_PER_ADDRESS": settings.REQUEST_LIMIT_PER_ADDRESS,
        "PUBLIC_URL": settings.PUBLIC_URL,
        "WEBHOOK_ALLOW_PRIVATE": settings.WEBHOOK_ALLOW_PRIVATE,
        "WEBHOOK_RESOLVE_SECONDS": settings.WEBHOOK_RESOLVE_SECONDS,
        "WEBHOOK_TIMEOUT_SECONDS": settings.WEBHOOK_TIMEOUT_SECONDS,
        "WEBHOOK_RETRY_SECONDS": list(settings.WEBHOOK_RETRY_SECONDS),
        "TRUSTED_PROXIES": settings.TRUSTED_PROXIES,
        "CONNECTIONS_PER_ADDRESS": connections_per_address,
        "METRICS_ALLOW": settings.METRICS_ALLOW,
        "METRICS_TOKEN": settings.METRICS_TOKEN,
        "CORS_ORIGINS": settings.CORS_ORIGINS,
        "JSON_BODY_LIMIT_KB": settings.JSON_BODY_LIMIT_KB,
        "CONNECTION_LIMIT": settings.CONNECTION_LIMIT,
        "REQUEST_HEADER_TIMEOUT_SECONDS": settings.REQUEST_HEADER_TIMEOUT_SECONDS,
        "CONNECTION_IDLE_TIMEOUT_SECONDS": settings.CONNECTION_IDLE_TIMEOUT_SECONDS,
        "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
        **fixed_config(),
    }


def fixed_config() -> dict[str, object]:
    """The keys no setting changes (fresh mutable values for each app)."""
    return {
        "MAX_FORM_PARTS": 100,
        # pool_pre_ping is set from the database URL in load_config.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "SESSION_TYPE": "redis",
        "SESSION_PERMANENT": True,
        "SESSION_KEY_PREFIX": "coffer:session:",
        # A session lasts SESSION_LIFETIME_DAYS from login; not rewriting it to Redis
        # on every request saves a round trip per request.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_NAME": "coffer_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # CSRF tokens live as long as the session; the header is the API's way in.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_HEADERS": ["X-CSRF-Token"],
        # API clients send no Referer; the token plus SameSite=Lax is the defence.
        "WTF_CSRF_SSL_STRICT": False,
        "RATELIMIT_KEY_PREFIX": "coffer:limit",
        "RATELIMIT_HEADERS_ENABLED": True,
        # The limiter's own Redis client: the same bounded waits as the app's (broker.py),
        # so a Redis that hangs answers 503 in seconds instead of holding a thread.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }


STORAGE_BACKENDS = ("local", "s3")


def check_storage_settings(values: dict[str, object]) -> None:
    """Refuse a storage configuration that cannot work, in one line."""
    backend = values.get("STORAGE_BACKEND", "local")
    if backend not in STORAGE_BACKENDS:
        raise ConfigError(f"STORAGE_BACKEND must be local or s3, not {backend!r}")
    if backend == "s3" and not str(values.get("S3_BUCKET") or "").strip():
        raise ConfigError("S3_BUCKET must be set when STORAGE_BACKEND=s3")
    prefix = str(values.get("S3_PREFIX") or "")
    if prefix.startswith("/"):
        raise ConfigError(f"S3_PREFIX must not start with '/', not {prefix!r}")


def check_public_url(values: dict[str, object]) -> None:
    """Refuse a PUBLIC_URL that is not an http(s) URL, or none in production; keep it
    without a trailing slash."""
    url = str(values.get("PUBLIC_URL") or "").strip().rstrip("/")
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.netloc or parts.query):
        raise ConfigError(
            f"PUBLIC_URL must be an http:// or https:// URL, not {values['PUBLIC_URL']!r}"
        )
    values["PUBLIC_URL"] = url
    if not url and values.get("APP_ENV") == "production":
        # Without it a share link's URL takes the request's Host header, which a client
        # (or a proxy passing it on) chooses: links could point anywhere.
        raise ConfigError(
            "PUBLIC_URL must be set when APP_ENV=production: the address clients reach "
            "Coffer at, e.g. https://files.example.com, for the URLs of share links"
        )


# A METRICS_TOKEN shorter than this is refused: it would be guessable.
METRICS_TOKEN_MIN_LENGTH = 16


def metrics_networks(raw: object) -> tuple[IPv4Network | IPv6Network, ...]:
    """METRICS_ALLOW read as networks (a bare address is a network of one)."""
    parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    networks = []
    for part in parts:
        text = str(part).strip()
        if not text:
            continue
        try:
            networks.append(ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                f"METRICS_ALLOW must list IP addresses or networks (CIDR), not {text!r}"
            ) from None
    return tuple(networks)


def check_metrics_token(token: object) -> None:
    """Refuse a METRICS_TOKEN too short to keep /metrics private."""
    if token and len(str(token)) < METRICS_TOKEN_MIN_LENGTH:
        raise ConfigError(
            f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters long"
        )


# An origin as browsers send it: http(s), a host (a name, an IPv4 address or a bracketed IPv6
# one) and perhaps a port; no path, no user, no wildcard.
CORS_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(:(?P<port>[0-9]{1,5}))?"
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def cors_origin(text: str) -> str:
    """One CORS_ORIGINS entry as browsers send it in Origin, or ConfigError."""
    # A trailing slash is the usual way a URL is pasted; browsers never send one.
    match = CORS_ORIGIN.fullmatch(text.lower().removesuffix("/"))
    port = int(match["port"]) if match and match["port"] else None
    if match is None or (port is not None and not 0 < port < 65536):
        raise ConfigError(
            "CORS_ORIGINS must list origins as scheme://host[:port] (http or https, no path, "
            f"no wildcard), separated by commas, not {text!r}"
        )
    origin = f"{match['scheme']}://{match['host']}"
    # Browsers leave the scheme's default port out of Origin.
    return origin if port in (None, DEFAULT_PORTS[match["scheme"]]) else f"{origin}:{port}"


def check_cors_origins(values: dict[str, object]) -> None:
    """Read CORS_ORIGINS (a comma-separated string or a list) into a tuple of origins."""
    raw = values.get("CORS_ORIGINS") or ()
    parts = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(parts, (list, tuple)):
        raise ConfigError(f"CORS_ORIGINS must be origins separated by commas, not {raw!r}")
    origins = [cors_origin(str(part).strip()) for part in parts if str(part).strip()]
    values["CORS_ORIGINS"] = tuple(dict.fromkeys(origins))


def load_config(overrides: dict[str, object] | None = None) -> dict[str, object]:
    """Build the configuration for APP_ENV as a plain dict, applying overrides last."""
    values: dict[str, Any] = flask_config(read_settings())
    if overrides:
        values.update(overrides)
    # Derived settings follow whatever the overrides changed.
    values["MAX_FILE_SIZE"] = int(values["MAX_FILE_SIZE_MB"]) * MiB
    # Flask's own check of non-upload bodies, the same limit waitress applies.
    values["MAX_CONTENT_LENGTH"] = int(values["JSON_BODY_LIMIT_KB"]) * 1024
    values["PERMANENT_SESSION_LIFETIME"] = timedelta(days=values["SESSION_LIFETIME_DAYS"])
    values["RATELIMIT_STORAGE_URI"] = values["REDIS_URL"]
    # A ping before each pooled connection's checkout (a query per request) guards against a
    # server that dropped the connection; a SQLite file has no server to drop it.
    values["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": not str(values["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"),
        **dict(values["SQLALCHEMY_ENGINE_OPTIONS"]),  # explicit options win
    }
    values["METRICS_NETWORKS"] = metrics_networks(values["METRICS_ALLOW"])
    check_metrics_token(values["METRICS_TOKEN"])
    # Checked after the overrides, which may choose the backend.
    check_storage_settings(values)
    check_public_url(values)
    check_cors_origins(values)
    return values
