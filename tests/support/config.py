"""The configuration every test app gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def app_config(database: str, redis_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The overrides every test app gets."""
    return {
        "SQLALCHEMY_DATABASE_URI": database,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "BCRYPT_ROUNDS": 4,
        "JOB_RETRY_INTERVALS": [0, 0],
        **extra,
    }
