"""Where the bytes live: one `Storage` interface, the backend chosen by STORAGE_BACKEND."""

from __future__ import annotations

from flask import Flask, current_app

from .base import Storage, StorageFull, StorageUnavailable, StoredObject, Upload
from .names import disk_name, display_name, extension_of, object_key

__all__ = [
    "Storage",
    "StorageFull",
    "StorageUnavailable",
    "StoredObject",
    "Upload",
    "build",
    "display_name",
    "disk_name",
    "extension_of",
    "get_storage",
    "init_app",
    "object_key",
]

EXTENSION_KEY = "coffer_storage"


def build(config: dict[str, object]) -> Storage:
    """The backend STORAGE_BACKEND names (the configuration has checked it)."""
    if config.get("STORAGE_BACKEND", "local") == "s3":
        # Imported here: boto3 takes a while to import and local installs never need it.
        from .s3 import S3Storage

        return S3Storage(
            str(config["S3_BUCKET"]),
            prefix=str(config.get("S3_PREFIX") or ""),
            endpoint_url=str(config.get("S3_ENDPOINT_URL") or ""),
            region=str(config.get("S3_REGION") or "us-east-1"),
            presigned_downloads=bool(config.get("S3_PRESIGNED_DOWNLOADS")),
            presign_seconds=int(config.get("S3_PRESIGN_SECONDS") or 60),  # type: ignore[call-overload]
        )
    from .local import LocalStorage

    return LocalStorage(str(config["UPLOAD_FOLDER"]))


def init_app(app: Flask) -> None:
    """Build the app's storage backend once."""
    app.extensions[EXTENSION_KEY] = build(app.config)


def get_storage() -> Storage:
    """The current app's storage backend."""
    storage: Storage = current_app.extensions[EXTENSION_KEY]
    return storage
