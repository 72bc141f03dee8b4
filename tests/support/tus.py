"""tus 1.0.0 requests through Flask's test client: the header every request carries,
the file name as Upload-Metadata encodes it, creation and PATCH; and an upload's expiry
moved as if time had passed."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app.extensions import db

TUS = {"Tus-Resumable": "1.0.0"}


def bearer(token: str) -> dict[str, str]:
    """Headers of a tus request by API token."""
    return {**TUS, "Authorization": f"Bearer {token}"}


def set_expiry(app: Flask, url: str, when: datetime) -> None:
    """Make the upload at `url` expire at `when`, as if its last PATCH were that long ago."""
    with app.app_context():
        db.session.execute(
            text("UPDATE resumable_uploads SET expires_at = :when WHERE id = :id"),
            {"when": when, "id": url.rsplit("/", 1)[-1]},
        )
        db.session.commit()


def metadata(name: str) -> str:
    """Upload-Metadata carrying a file name, as tus encodes it."""
    return "filename " + base64.b64encode(name.encode()).decode()


def create(client: FlaskClient, headers: dict[str, str], length: int, name: str = "a.txt") -> Any:
    """POST /api/uploads."""
    return client.post(
        "/api/uploads",
        headers={**headers, "Upload-Length": str(length), "Upload-Metadata": metadata(name)},
    )


def patch(client: FlaskClient, headers: dict[str, str], url: str, offset: int, data: bytes) -> Any:
    """PATCH bytes at an offset."""
    return client.patch(
        url,
        data=data,
        headers={
            **headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
        # Said even of an empty body, which the test client would otherwise send without one.
        environ_overrides={"CONTENT_LENGTH": str(len(data))},
    )
