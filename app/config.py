"""Configuration read from the environment (and `.env`), one class per APP_ENV."""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
# Request threads of the web process: the `threads` sweep of `make bench` served two cores
# best with 4 (docs/PERFORMANCE.md).
DEFAULT_WEB_THREADS = 4

load_dotenv(BASE_DIR / ".env")


class ConfigError(RuntimeError):
    """Raised when the environment cannot produce a safe configuration."""


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable: 1/true/yes/on are true, 0/false/no/off false."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """Read an integer variable no smaller than `minimum`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def env_int_list(name: str, default: list[int]) -> list[int]:
    """Read a comma-separated list of non-negative whole numbers."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"{name} must be whole numbers separated by commas, not {raw!r}"
        ) from None
    if not values or min(values) < 0:
        raise ConfigError(f"{name} must list at least one number, none negative")
    return values


def database_url(instance: Path) -> str:
    """DATABASE_URL with the psycopg 3 driver named, or the SQLite default."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{instance / 'coffer.db'}"
    # PaaS providers hand out postgres:// or postgresql://; SQLAlchemy needs the driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def development_secret(instance: Path) -> str:
    """A random key kept under instance/ so development sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


class Config:
    """Settings shared by every environment; values come from the environment."""

    APP_ENV = "development"
    TESTING = False

    def __init__(self) -> None:
        instance = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance")).resolve()
        self.INSTANCE_PATH = str(instance)
        self.SECRET_KEY = os.environ.get("SECRET_KEY", "").strip() or self.default_secret(instance)
        self.SQLALCHEMY_DATABASE_URI = database_url(instance)
        self.REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
        self.UPLOAD_FOLDER = str(
            Path(os.environ.get("UPLOAD_FOLDER", instance / "uploads")).resolve()
        )
        # Where the bytes live: `local` (UPLOAD_FOLDER) or `s3` (an S3-compatible bucket).
        self.STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "local").strip().lower() or "local"
        self.S3_BUCKET = os.environ.get("S3_BUCKET", "").strip()
        # Empty means AWS itself; set it for MinIO, SeaweedFS, R2 and the like.
        self.S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL", "").strip()
        self.S3_REGION = os.environ.get("S3_REGION", "").strip() or "us-east-1"
        # Coffer owns only the keys under this prefix (e.g. `coffer/`): the bucket may be shared.
        self.S3_PREFIX = os.environ.get("S3_PREFIX", "").strip()
        self.S3_PRESIGNED_DOWNLOADS = env_bool("S3_PRESIGNED_DOWNLOADS", False)
        self.S3_PRESIGN_SECONDS = env_int("S3_PRESIGN_SECONDS", 60, minimum=1)
        self.MAX_FILE_SIZE_MB = env_int("MAX_FILE_SIZE_MB", 100, minimum=1)
        self.STORAGE_QUOTA_MB = env_int("STORAGE_QUOTA_MB", 1000, minimum=0)
        # Hours after its last PATCH an unfinished resumable upload is removed.
        self.RESUMABLE_EXPIRY_HOURS = env_int("RESUMABLE_EXPIRY_HOURS", 24, minimum=1)
        self.OPEN_JOIN = env_bool("OPEN_JOIN", False)
        self.INVITE_TTL_HOURS = env_int("INVITE_TTL_HOURS", 72, minimum=1)
        self.SESSION_LIFETIME_DAYS = env_int("SESSION_LIFETIME_DAYS", 7, minimum=1)
        # Signed-in sessions one user may hold at once; a login past it ends the oldest.
        self.SESSION_MAX_PER_USER = env_int("SESSION_MAX_PER_USER", 10, minimum=1)
        self.BCRYPT_ROUNDS = env_int("BCRYPT_ROUNDS", 12, minimum=4)
        self.PORT = env_int("PORT", 5000, minimum=1)
        self.WEB_THREADS = env_int("WEB_THREADS", DEFAULT_WEB_THREADS, minimum=1)
        self.DELETE_FAILED_FILES = env_bool("DELETE_FAILED_FILES", False)
        self.JOB_TIMEOUT = env_int("JOB_TIMEOUT", 600, minimum=1)
        # Seconds to wait before each retry of a validation that hit a transient error.
        self.JOB_RETRY_INTERVALS = env_int_list("JOB_RETRY_INTERVALS", [2, 10, 30])
        # Seconds between the heartbeats a worker sends while a job runs (RQ's
        # job_monitoring_interval).
        self.JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 30, minimum=1)
        # Seconds without a heartbeat after which the sweep takes a started job as dead
        # and queues its file again; three missed heartbeats by default. Only needed for
        # workers on other hosts: a dead worker on this host is seen at once by its pid.
        self.JOB_STALE_SECONDS = env_int(
            "JOB_STALE_SECONDS", 3 * self.JOB_HEARTBEAT_SECONDS, minimum=2
        )
        if self.JOB_STALE_SECONDS <= self.JOB_HEARTBEAT_SECONDS:
            raise ConfigError(
                "JOB_STALE_SECONDS must be longer than JOB_HEARTBEAT_SECONDS, or running "
                "jobs would be taken as dead between two heartbeats"
            )
        # Seconds between two sweeps for files whose job Redis lost (one sweep at a time
        # across every worker and host).
        self.SWEEP_SECONDS = env_int("SWEEP_SECONDS", 30, minimum=1)
        self.WORKERS = env_int("WORKERS", 1, minimum=1)
        self.HOST = os.environ.get("HOST", "127.0.0.1")
        self.LOGIN_LIMIT_PER_EMAIL = os.environ.get("LOGIN_LIMIT_PER_EMAIL", "5 per minute")
        self.LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "50 per minute")
        self.REGISTER_LIMIT_PER_ADDRESS = os.environ.get(
            "REGISTER_LIMIT_PER_ADDRESS", "10 per hour"
        )
        # Share links (/s/<secret>) fetched per client address: each one is a guess at a
        # secret when it is not a download.
        self.SHARE_LIMIT_PER_ADDRESS = os.environ.get("SHARE_LIMIT_PER_ADDRESS", "60 per minute")
        # The address clients reach Coffer at (e.g. https://files.example.com), for the
        # absolute URLs of share links. Required in production; empty elsewhere takes the
        # request's own scheme and host.
        self.PUBLIC_URL = os.environ.get("PUBLIC_URL", "").strip()
        # Insecure: true lets webhooks reach loopback, private and other internal
        # addresses (tests, and deployments whose receivers are all internal).
        self.WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
        # Seconds the DNS lookup of a webhook's host may take, at registration and at each
        # delivery; longer is refused (url_not_allowed) or a failed attempt.
        self.WEBHOOK_RESOLVE_SECONDS = env_int("WEBHOOK_RESOLVE_SECONDS", 5, minimum=1)
        # Seconds one webhook delivery attempt may take, connecting and answering together.
        self.WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
        # Seconds to wait before each retry of a webhook delivery that failed; one retry
        # per number, then the delivery is marked failed.
        self.WEBHOOK_RETRY_SECONDS = env_int_list(
            "WEBHOOK_RETRY_SECONDS", [10, 60, 600, 3600, 21600]
        )
        # Number of proxies in front of Coffer whose X-Forwarded-For is trusted; 0
        # means the client address is the socket peer and the header is ignored.
        self.TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
        # Connections one client address may hold open; more are closed as they arrive
        # (0: no cap). Behind a trusted proxy every connection comes from the proxy, which
        # must cap each client itself (docs/DEPLOY.md), so the default there is no cap.
        self.CONNECTIONS_PER_ADDRESS = env_int(
            "CONNECTIONS_PER_ADDRESS", 0 if self.TRUSTED_PROXIES else 50
        )
        # Client addresses (IPs or CIDR networks, comma-separated) allowed to read
        # /metrics, as the app sees them (behind a proxy, with TRUSTED_PROXIES set); empty
        # allows none. Others need METRICS_TOKEN as a bearer token, or get 404.
        self.METRICS_ALLOW = os.environ.get("METRICS_ALLOW", "127.0.0.1")
        # Empty: no token opens /metrics. Set it (16 characters or more) for a Prometheus
        # that scrapes from another address.
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
        # Origins (scheme://host[:port], comma-separated) whose browser pages may call /api
        # with a bearer token; empty allows none (app/cors.py).
        self.CORS_ORIGINS = os.environ.get("CORS_ORIGINS", "")

        # Largest request body of anything but an upload (JSON, forms), in KiB: waitress
        # refuses a longer declared or chunked body with 413 before reading past it.
        self.JSON_BODY_LIMIT_KB = env_int("JSON_BODY_LIMIT_KB", 1024, minimum=1)
        # Connections the web process holds open at once, from every client together.
        self.CONNECTION_LIMIT = env_int("CONNECTION_LIMIT", 1000, minimum=10)
        # Seconds a connection gets from its first byte (or from being opened) to the end
        # of a request's headers; slower ones (slowloris) are closed.
        self.REQUEST_HEADER_TIMEOUT_SECONDS = env_int(
            "REQUEST_HEADER_TIMEOUT_SECONDS", 10, minimum=1
        )
        # Seconds a connection may sit without sending or receiving a byte while no
        # request of it is being handled (an idle keep-alive, a stalled body).
        self.CONNECTION_IDLE_TIMEOUT_SECONDS = env_int(
            "CONNECTION_IDLE_TIMEOUT_SECONDS", 30, minimum=1
        )
        self.MAX_FORM_PARTS = 100

        # pool_pre_ping is set from the database URL in load_config.
        self.SQLALCHEMY_ENGINE_OPTIONS: dict[str, object] = {}

        self.SESSION_TYPE = "redis"
        self.SESSION_PERMANENT = True
        self.SESSION_KEY_PREFIX = "coffer:session:"
        # A session lasts SESSION_LIFETIME_DAYS from login; not rewriting it to Redis
        # on every request saves a round trip per request.
        self.SESSION_REFRESH_EACH_REQUEST = False
        self.SESSION_COOKIE_NAME = "coffer_session"
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", self.APP_ENV == "production")

        # CSRF tokens live as long as the session; the header is the API's way in.
        self.WTF_CSRF_CHECK_DEFAULT = False
        self.WTF_CSRF_TIME_LIMIT = None
        self.WTF_CSRF_HEADERS = ["X-CSRF-Token"]
        # API clients send no Referer; the token plus SameSite=Lax is the defence.
        self.WTF_CSRF_SSL_STRICT = False

        self.RATELIMIT_KEY_PREFIX = "coffer:limit"
        self.RATELIMIT_HEADERS_ENABLED = True
        # The limiter's own Redis client: the same bounded waits as the app's (broker.py),
        # so a Redis that hangs answers 503 in seconds instead of holding a thread.
        self.RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}

    def default_secret(self, instance: Path) -> str:
        """The key used when SECRET_KEY is unset."""
        return development_secret(instance)


class DevelopmentConfig(Config):
    """Local development: SQLite and a generated secret by default."""

    APP_ENV = "development"


class TestingConfig(Config):
    """The test suite: fast hashing, everything else as in development."""

    APP_ENV = "testing"
    TESTING = True

    def default_secret(self, instance: Path) -> str:
        """Tests use a throwaway key."""
        return secrets.token_hex(32)


class ProductionConfig(Config):
    """Production: refuses to start without SECRET_KEY; secure cookies."""

    APP_ENV = "production"

    def default_secret(self, instance: Path) -> str:
        """Production never invents a key: sessions would not survive a restart."""
        raise ConfigError("SECRET_KEY must be set when APP_ENV=production")


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
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
    name = os.environ.get("APP_ENV", "development").strip().lower() or "development"
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, not {name!r}")
    config = CONFIGS[name]()
    values = {key: getattr(config, key) for key in dir(config) if key.isupper()}
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
