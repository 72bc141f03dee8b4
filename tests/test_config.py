"""The settings read from the environment: defaults, how each kind of value is read, the
differences between APP_ENVs, and the one-line reasons a bad value is refused with."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, load_config
from app.settings import Settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting in the environment but APP_ENV=testing and an INSTANCE_PATH of the test's."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "testing")
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    return monkeypatch


def test_every_setting_states_its_meaning_in_one_line() -> None:
    """Each field of the model is described, on one line."""
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert "\n" not in field.description, f"{name}: a description of one line"


def test_defaults(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With nothing set, each setting takes its default, derived ones included."""
    values = load_config()
    instance = tmp_path / "instance"
    expected = {
        "APP_ENV": "testing",
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'coffer.db'}",
        "REDIS_URL": "redis://localhost:6379/0",
        "UPLOAD_FOLDER": str(instance / "uploads"),
        "STORAGE_BACKEND": "local",
        "S3_BUCKET": "",
        "S3_REGION": "us-east-1",
        "S3_PRESIGNED_DOWNLOADS": False,
        "S3_PRESIGN_SECONDS": 60,
        "MAX_FILE_SIZE_MB": 100,
        "MAX_FILE_SIZE": 100 * 1024 * 1024,
        "STORAGE_QUOTA_MB": 1000,
        "BCRYPT_ROUNDS": 12,
        "PORT": 5000,
        "WEB_THREADS": 4,
        "HOST": "127.0.0.1",
        "JOB_RETRY_INTERVALS": [2, 10, 30],
        "JOB_HEARTBEAT_SECONDS": 30,
        "JOB_STALE_SECONDS": 90,
        "WEBHOOK_RETRY_SECONDS": [10, 60, 600, 3600, 21600],
        "LOGIN_LIMIT_PER_EMAIL": "5 per minute",
        "TRUSTED_PROXIES": 0,
        "CONNECTIONS_PER_ADDRESS": 50,
        "CONNECTION_LIMIT": 1000,
        "JSON_BODY_LIMIT_KB": 1024,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "METRICS_ALLOW": "127.0.0.1",
        "CORS_ORIGINS": (),
        "PUBLIC_URL": "",
        "SESSION_COOKIE_SECURE": False,
    }
    assert {key: values[key] for key in expected} == expected
    assert re.fullmatch(r"[0-9a-f]{64}", str(values["SECRET_KEY"]))


def test_values_are_read_as_before(environment: pytest.MonkeyPatch) -> None:
    """Numbers, flags and lists allow surrounding spaces and any case; blanks take the
    default, except in settings taken as written."""
    for name, value in {
        "PORT": " 8080 ",
        "OPEN_JOIN": " On ",
        "DELETE_FAILED_FILES": "yes",
        "S3_PRESIGNED_DOWNLOADS": "0",
        "JOB_RETRY_INTERVALS": " 1, 2 ,",
        "STORAGE_BACKEND": " S3 ",
        "S3_BUCKET": " bucket ",
        "S3_REGION": "  ",
        "WORKERS": "",
        "HOST": "",
        "DATABASE_URL": " postgres://coffer@db/coffer ",
        "JOB_HEARTBEAT_SECONDS": "10",
        "TRUSTED_PROXIES": "1",
    }.items():
        environment.setenv(name, value)
    values = load_config()
    assert values["PORT"] == 8080
    assert values["OPEN_JOIN"] is True
    assert values["DELETE_FAILED_FILES"] is True
    assert values["S3_PRESIGNED_DOWNLOADS"] is False
    assert values["JOB_RETRY_INTERVALS"] == [1, 2]
    assert values["STORAGE_BACKEND"] == "s3"
    assert values["S3_BUCKET"] == "bucket"
    assert values["S3_REGION"] == "us-east-1"
    assert values["WORKERS"] == 1
    assert values["HOST"] == ""
    assert values["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://coffer@db/coffer"
    # Derived defaults follow the settings they derive from.
    assert values["JOB_STALE_SECONDS"] == 30
    assert values["CONNECTIONS_PER_ADDRESS"] == 0


def test_names_are_case_sensitive(environment: pytest.MonkeyPatch) -> None:
    """`port` is not PORT."""
    environment.setenv("port", "not a number")
    assert load_config()["PORT"] == 5000


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "abc", "PORT must be a whole number, not 'abc'"),
        ("PORT", "5.0", "PORT must be a whole number, not '5.0'"),
        ("PORT", "0", "PORT must be at least 1, not 0"),
        ("BCRYPT_ROUNDS", "3", "BCRYPT_ROUNDS must be at least 4, not 3"),
        ("CONNECTION_LIMIT", "9", "CONNECTION_LIMIT must be at least 10, not 9"),
        ("TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES must be at least 0, not -1"),
        ("JOB_STALE_SECONDS", "1", "JOB_STALE_SECONDS must be at least 2, not 1"),
        ("OPEN_JOIN", "maybe", "OPEN_JOIN must be true or false, not 'maybe'"),
        (
            "JOB_RETRY_INTERVALS",
            "2,x",
            "JOB_RETRY_INTERVALS must be whole numbers separated by commas, not '2,x'",
        ),
        ("WEBHOOK_RETRY_SECONDS", ",", "WEBHOOK_RETRY_SECONDS must list at least one number"),
        ("JOB_RETRY_INTERVALS", "-1,2", "JOB_RETRY_INTERVALS must list at least one number"),
        (
            "JOB_STALE_SECONDS",
            "30",
            "JOB_STALE_SECONDS must be longer than JOB_HEARTBEAT_SECONDS, or running jobs "
            "would be taken as dead between two heartbeats",
        ),
        ("APP_ENV", " Staging ", "APP_ENV must be one of development, testing, production, "),
        ("STORAGE_BACKEND", "ftp", "STORAGE_BACKEND must be local or s3, not 'ftp'"),
        ("S3_PREFIX", "/coffer/", "S3_PREFIX must not start with '/', not '/coffer/'"),
    ],
)
def test_bad_values_are_refused_in_one_line(
    environment: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """Each bad value is refused with a ConfigError naming the setting."""
    environment.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert str(refused.value).startswith(message)


def test_the_first_bad_setting_is_the_one_reported(environment: pytest.MonkeyPatch) -> None:
    """Settings are checked in their order: production's missing SECRET_KEY comes before a
    bad PORT, which comes before a bad WORKERS."""
    environment.setenv("PORT", "x")
    environment.setenv("WORKERS", "y")
    with pytest.raises(ConfigError, match="^PORT must be a whole number"):
        load_config()
    environment.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="^SECRET_KEY must be set when APP_ENV=production$"):
        load_config()


def test_production_requires_its_settings_and_secures_cookies(
    environment: pytest.MonkeyPatch,
) -> None:
    """Production needs SECRET_KEY and PUBLIC_URL, and sends cookies over HTTPS only unless
    told otherwise."""
    environment.setenv("APP_ENV", " Production ")
    environment.setenv("SECRET_KEY", "  ")
    with pytest.raises(ConfigError, match="^SECRET_KEY must be set when APP_ENV=production$"):
        load_config()
    environment.setenv("SECRET_KEY", " production-secret ")
    with pytest.raises(ConfigError, match="^PUBLIC_URL must be set when APP_ENV=production"):
        load_config()
    environment.setenv("PUBLIC_URL", "https://files.example.com/")
    values = load_config()
    assert (values["APP_ENV"], values["TESTING"]) == ("production", False)
    assert values["SECRET_KEY"] == "production-secret"
    assert values["PUBLIC_URL"] == "https://files.example.com"
    assert values["SESSION_COOKIE_SECURE"] is True
    environment.setenv("SESSION_COOKIE_SECURE", "false")
    assert load_config()["SESSION_COOKIE_SECURE"] is False


def test_development_keeps_its_generated_key(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without SECRET_KEY, development makes a key once, readable by its owner alone, and
    keeps it; testing takes a new one each time."""
    environment.setenv("APP_ENV", "development")
    key = load_config()["SECRET_KEY"]
    path = tmp_path / "instance" / "secret_key"
    assert path.read_text() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config()["SECRET_KEY"] == key
    environment.setenv("APP_ENV", "testing")
    assert load_config()["SECRET_KEY"] != load_config()["SECRET_KEY"]
