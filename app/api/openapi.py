"""The OpenAPI document of the API, served as JSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from .openapi_document import document

bp = Blueprint("openapi", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every endpoint."""
    return document()
