"""The configuration every test app gets."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.support.storage import STORAGE_BACKEND


def app_config(database: str, redis_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """The overrides every test app gets."""
    return {
        "SQLALCHEMY_DATABASE_URI": database,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "BCRYPT_ROUNDS": 4,
        "JOB_RETRY_INTERVALS": [0, 0],
        # On an s3 run, a part of the run's bucket no other app sees.
        **({"S3_PREFIX": f"test-{uuid.uuid4().hex[:12]}/"} if STORAGE_BACKEND == "s3" else {}),
        **extra,
    }
