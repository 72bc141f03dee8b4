"""Every setting Coffer reads from the environment (and `.env`): its type, default and meaning,
once, in one typed model per APP_ENV."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from dotenv import load_dotenv
from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BASE_DIR = Path(__file__).resolve().parent.parent
# Request threads of the web process: the `threads` sweep of `make bench` served two cores
# best with 4 (docs/PERFORMANCE.md).
DEFAULT_WEB_THREADS = 4

# The environment wins over `.env`: load_dotenv sets only the variables still unset.
load_dotenv(BASE_DIR / ".env")


class ConfigError(RuntimeError):
    """Raised when the environment cannot produce a safe configuration."""


class EnvText:
    """Annotation of a setting whose text is read by `read`; a blank value takes the default.

    The ConfigError that `read` raises leaves pydantic as it is, so the first setting (in
    the model's order) that cannot be read is the one reported, in Coffer's own words.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """Run `read` on the environment's text before pydantic's own checks of the type."""
        return core_schema.with_info_before_validator_function(self.validate, handler(source))

    def validate(self, raw: object, info: ValidationInfo) -> object:
        """The value of `raw` when it is the environment's text; anything else as it is."""
        return self.read(raw, str(info.field_name)) if isinstance(raw, str) else raw

    def read(self, raw: str, name: str) -> object:
        """The value the text `raw` of the variable `name` stands for."""
        return raw


@dataclass(frozen=True)
class Trim(EnvText):
    """A string without its surrounding whitespace."""

    def read(self, raw: str, name: str) -> object:
        """`raw` stripped."""
        return raw.strip()


@dataclass(frozen=True)
class Flag(EnvText):
    """A boolean: 1/true/yes/on are true, 0/false/no/off false (any case)."""

    def read(self, raw: str, name: str) -> object:
        """True or False, or ConfigError."""
        value = raw.strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")


@dataclass(frozen=True)
class AtLeast(EnvText):
    """A whole number no smaller than `minimum`."""

    minimum: int = 0

    def read(self, raw: str, name: str) -> object:
        """The number, or ConfigError."""
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
        if value < self.minimum:
            raise ConfigError(f"{name} must be at least {self.minimum}, not {value}")
        return value


@dataclass(frozen=True)
class CommaNumbers(EnvText):
    """A comma-separated list of non-negative whole numbers, at least one."""

    def read(self, raw: str, name: str) -> object:
        """The numbers, or ConfigError."""
        try:
            values = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"{name} must be whole numbers separated by commas, not {raw!r}"
            ) from None
        if not values or min(values) < 0:
            raise ConfigError(f"{name} must list at least one number, none negative")
        return values


def resolved(path: Path) -> Path:
    """`path` made absolute, relative to the working directory, links followed."""
    return path.resolve()


# The kinds of settings. A plain `str` is taken as written, an empty one included.
Trimmed = Annotated[str, Trim()]
Lowered = Annotated[str, Trim(), AfterValidator(str.lower)]
Bool = Annotated[bool, Flag()]
Whole = Annotated[int, AtLeast(0)]
Positive = Annotated[int, AtLeast(1)]
# NoDecode: the text is comma-separated numbers, not the JSON pydantic-settings would expect.
Numbers = Annotated[list[int], NoDecode, CommaNumbers()]
Folder = Annotated[Path, AfterValidator(resolved)]


class AppEnv(BaseSettings):
    """APP_ENV alone: which of the models below reads the rest."""

    # Names must match exactly: `secret_key` is not SECRET_KEY.
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    APP_ENV: Lowered = Field(
        default="development", description="development, testing or production (ENVIRONMENTS)."
    )

    @field_validator("APP_ENV")
    @classmethod
    def known_environment(cls, name: str) -> str:
        """Refuse an APP_ENV that has no model."""
        if name not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
        return name

    @model_validator(mode="before")
    @classmethod
    def blanks_take_defaults(cls, data: Any) -> Any:
        """Drop the blank values of the settings that read their text (EnvText)."""
        if not isinstance(data, dict):
            return data
        return {
            name: value
            for name, value in data.items()
            if not (isinstance(value, str) and value.strip() == "" and cls.reads_text(name))
        }

    @classmethod
    def reads_text(cls, name: str) -> bool:
        """Whether the setting `name` is one whose text an EnvText reads."""
        field = cls.model_fields.get(name)
        return field is not None and any(isinstance(m, EnvText) for m in field.metadata)


class Settings(AppEnv):
    """The settings of every environment, in the order they are checked."""

    # Flask's TESTING.
    TESTING: ClassVar[bool] = False

    # --- storage -----------------------------------------------------------------------
    INSTANCE_PATH: Folder = Field(
        default=BASE_DIR / "instance",
        validate_default=True,
        description="Folder of the SQLite database, the development key and supervisord's files.",
    )
    SECRET_KEY: Trimmed = Field(
        default="",
        validate_default=True,
        description="Signs sessions and CSRF tokens; empty: default_secret() of APP_ENV.",
    )
    DATABASE_URL: Trimmed = Field(
        default="", description="SQLAlchemy URL of the database; empty: SQLite in INSTANCE_PATH."
    )
    REDIS_URL: str = Field(
        default="redis://localhost:6379/0", description="Redis for sessions, rate limits and jobs."
    )
    UPLOAD_FOLDER: Folder | None = Field(
        default=None,
        description="Where local storage keeps the bytes; unset: INSTANCE_PATH/uploads.",
    )
    STORAGE_BACKEND: Lowered = Field(
        default="local",
        description="Where the bytes live: local (UPLOAD_FOLDER) or s3 (S3_BUCKET).",
    )
    S3_BUCKET: Trimmed = Field(
        default="", description="The bucket; required with STORAGE_BACKEND=s3."
    )
    S3_ENDPOINT_URL: Trimmed = Field(
        default="", description="Empty means AWS itself; set for MinIO, SeaweedFS, R2 and the like."
    )
    S3_REGION: Trimmed = Field(default="us-east-1", description="The bucket's region.")
    S3_PREFIX: Trimmed = Field(
        default="",
        description="Coffer owns only the keys under it (e.g. coffer/): a bucket may be shared.",
    )
    S3_PRESIGNED_DOWNLOADS: Bool = Field(
        default=False, description="true: downloads redirect to a presigned URL of the store."
    )
    S3_PRESIGN_SECONDS: Positive = Field(
        default=60, description="Seconds a presigned URL is valid."
    )

    # --- limits and accounts -----------------------------------------------------------
    MAX_FILE_SIZE_MB: Positive = Field(default=100, description="Largest upload, in MiB.")
    PREVIEW_MAX_PIXELS: Positive = Field(
        default=50_000_000,
        description="Largest image (width x height, read before decoding) given previews.",
    )
    STORAGE_QUOTA_MB: Whole = Field(
        default=1000, description="Quota of a new organization, in MiB."
    )
    RESUMABLE_EXPIRY_HOURS: Positive = Field(
        default=24,
        description="Hours after its last PATCH an unfinished resumable upload is removed.",
    )
    TRASH_RETENTION_DAYS: Whole = Field(
        default=30,
        description="Days a deleted file or folder stays in the trash before it is purged "
        "(0: at once); an organization's admin may set its own.",
    )
    VERSIONS_KEPT: Positive = Field(
        default=10,
        description="Versions of a file kept (the newest); an organization's admin may set "
        "its own.",
    )
    ACTIVITY_RETENTION_DAYS: Positive = Field(
        default=365, description="Days the activity record keeps each event."
    )
    OPEN_JOIN: Bool = Field(
        default=False,
        description="true: anyone may join an organization by name, without an invite.",
    )
    INVITE_TTL_HOURS: Positive = Field(default=72, description="Hours an invite code stays valid.")
    SESSION_LIFETIME_DAYS: Positive = Field(default=7, description="Days a login session lasts.")
    SESSION_MAX_PER_USER: Positive = Field(
        default=10,
        description="Sessions one user may hold at once; a login past it ends the oldest.",
    )
    BCRYPT_ROUNDS: Annotated[int, AtLeast(4)] = Field(
        default=12, description="bcrypt cost factor of password hashes."
    )

    # --- processes ---------------------------------------------------------------------
    PORT: Positive = Field(default=5000, description="Port the web server listens on.")
    WEB_THREADS: Positive = Field(
        default=DEFAULT_WEB_THREADS, description="Request threads of the web process."
    )
    DELETE_FAILED_FILES: Bool = Field(
        default=False, description="true: the bytes of files that fail validation are deleted."
    )
    JOB_TIMEOUT: Positive = Field(default=600, description="Seconds one validation may run.")
    JOB_RETRY_INTERVALS: Numbers = Field(
        default=[2, 10, 30],
        description="Seconds before each retry of a validation hit by a transient error.",
    )
    JOB_HEARTBEAT_SECONDS: Positive = Field(
        default=30,
        description="Seconds between a running job's heartbeats (RQ's job_monitoring_interval).",
    )
    # Only needed for workers on other hosts: a dead worker on this host is seen at once by
    # its pid.
    JOB_STALE_SECONDS: Annotated[int | None, AtLeast(2)] = Field(
        default=None,
        description="Seconds without a heartbeat that make a started job dead and requeued; "
        "unset: three heartbeats.",
    )
    SWEEP_SECONDS: Positive = Field(
        default=30, description="Seconds between two sweeps for files whose job Redis lost."
    )
    WORKERS: Positive = Field(default=1, description="RQ worker processes supervisord starts.")
    HOST: str = Field(default="127.0.0.1", description="Address the web server listens on.")

    # --- rate limits -------------------------------------------------------------------
    LOGIN_LIMIT_PER_EMAIL: str = Field(
        default="5 per minute", description="Failed logins per email and client address."
    )
    LOGIN_LIMIT_PER_ADDRESS: str = Field(
        default="50 per minute", description="Failed logins per client address."
    )
    REGISTER_LIMIT_PER_ADDRESS: str = Field(
        default="10 per hour", description="Registrations per client address."
    )
    # Each request to a share link that is not a download is a guess at a secret.
    SHARE_LIMIT_PER_ADDRESS: str = Field(
        default="60 per minute",
        description="Requests to share links (/s/<secret>) per client address.",
    )

    # Each request to an upload-only link that opens it or begins a file is a guess at a
    # secret, or a file more.
    REQUEST_LIMIT_PER_ADDRESS: str = Field(
        default="60 per minute",
        description="Upload-only link pages and new files sent through them (/r/<secret>) "
        "per client address.",
    )

    # --- share links and webhooks ------------------------------------------------------
    PUBLIC_URL: Trimmed = Field(
        default="",
        description="The URL clients reach Coffer at, for share links; required in production, "
        "elsewhere empty takes the request's scheme and host.",
    )
    WEBHOOK_ALLOW_PRIVATE: Bool = Field(
        default=False,
        description="Insecure: true lets webhooks reach loopback and internal addresses.",
    )
    WEBHOOK_RESOLVE_SECONDS: Positive = Field(
        default=5, description="Seconds the DNS lookup of a webhook's host may take."
    )
    WEBHOOK_TIMEOUT_SECONDS: Positive = Field(
        default=10, description="Seconds one webhook delivery attempt may take."
    )
    WEBHOOK_RETRY_SECONDS: Numbers = Field(
        default=[10, 60, 600, 3600, 21600],
        description="Seconds before each retry of a failed webhook delivery; then it failed.",
    )

    # --- web server --------------------------------------------------------------------
    TRUSTED_PROXIES: Whole = Field(
        default=0, description="Proxies whose X-Forwarded-For/-Proto are trusted; 0 ignores them."
    )
    # Behind a trusted proxy every connection comes from the proxy, which must cap each
    # client itself (docs/DEPLOY.md), so the default there is no cap.
    CONNECTIONS_PER_ADDRESS: Annotated[int | None, AtLeast(0)] = Field(
        default=None,
        description="Connections one client address may hold (0: no cap); "
        "unset: 50, or 0 with TRUSTED_PROXIES.",
    )
    METRICS_ALLOW: str = Field(
        default="127.0.0.1",
        description="Addresses or CIDR networks that may read /metrics; empty: none.",
    )
    METRICS_TOKEN: Trimmed = Field(
        default="",
        description="Bearer token (16+ characters) that opens /metrics; empty: none does.",
    )
    CORS_ORIGINS: str = Field(
        default="",
        description="Origins whose pages may call /api with a bearer token; empty: none.",
    )
    JSON_BODY_LIMIT_KB: Positive = Field(
        default=1024, description="Largest body of anything but an upload, in KiB."
    )
    CONNECTION_LIMIT: Annotated[int, AtLeast(10)] = Field(
        default=1000, description="Connections the web process holds open at once, from everyone."
    )
    REQUEST_HEADER_TIMEOUT_SECONDS: Positive = Field(
        default=10,
        description="Seconds from a connection's first byte to the end of a request's headers.",
    )
    CONNECTION_IDLE_TIMEOUT_SECONDS: Positive = Field(
        default=30,
        description="Seconds a connection may stay silent while none of its requests runs.",
    )
    SESSION_COOKIE_SECURE: Bool = Field(
        default=False, description="Send the session cookie over HTTPS only."
    )

    @field_validator("JOB_STALE_SECONDS")
    @classmethod
    def stale_after_heartbeats(cls, stale: int | None, info: ValidationInfo) -> int | None:
        """Refuse a JOB_STALE_SECONDS that running jobs could reach between two heartbeats."""
        if stale is not None and stale <= info.data["JOB_HEARTBEAT_SECONDS"]:
            raise ConfigError(
                "JOB_STALE_SECONDS must be longer than JOB_HEARTBEAT_SECONDS, or running "
                "jobs would be taken as dead between two heartbeats"
            )
        return stale

    @field_validator("SECRET_KEY")
    @classmethod
    def secret_or_default(cls, key: str, info: ValidationInfo) -> str:
        """SECRET_KEY, or this environment's default_secret when it is empty."""
        return key or cls.default_secret(info.data["INSTANCE_PATH"])

    @classmethod
    def default_secret(cls, instance: Path) -> str:
        """The key used when SECRET_KEY is unset."""
        return development_secret(instance)


class DevelopmentSettings(Settings):
    """Local development: SQLite and a generated secret by default."""


class TestingSettings(Settings):
    """The test suite: everything as in development, but a throwaway key."""

    TESTING = True

    @classmethod
    def default_secret(cls, instance: Path) -> str:
        """Tests use a throwaway key."""
        return secrets.token_hex(32)


class ProductionSettings(Settings):
    """Production: refuses to start without SECRET_KEY (and PUBLIC_URL); secure cookies."""

    SESSION_COOKIE_SECURE: Bool = Field(
        default=True,
        description="Send the session cookie over HTTPS only; false only to try over HTTP.",
    )

    @classmethod
    def default_secret(cls, instance: Path) -> str:
        """Production never invents a key: sessions would not survive a restart."""
        raise ConfigError("SECRET_KEY must be set when APP_ENV=production")


ENVIRONMENTS: dict[str, type[Settings]] = {
    "development": DevelopmentSettings,
    "testing": TestingSettings,
    "production": ProductionSettings,
}


def read_settings() -> Settings:
    """The settings of APP_ENV, read from the environment, or ConfigError."""
    return ENVIRONMENTS[AppEnv().APP_ENV]()


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
