"""tus 1.0.0 requests through Flask's test client: the header every request carries,
the file name as Upload-Metadata encodes it, creation and PATCH."""

from __future__ import annotations

import base64
from typing import Any

from flask.testing import FlaskClient

TUS = {"Tus-Resumable": "1.0.0"}


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
    )
