"""The OpenAPI document of the API, served as JSON."""

from __future__ import annotations

from typing import Any

from .. import schemas
from .contract import PUBLIC, DocumentedBlueprint, operation, ref, response
from .openapi_document import document

bp = DocumentedBlueprint("openapi", __name__, url_prefix="/api")


@bp.get(
    "/openapi.json",
    openapi=operation(
        "openapi",
        "This document",
        "operations",
        {"200": response("The OpenAPI document.", ref(schemas.OpenAPIDocument))},
        security=PUBLIC,
    ),
)
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every endpoint."""
    return document()
