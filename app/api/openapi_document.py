"""The OpenAPI 3.1 document of Coffer's HTTP API: each operation as declared beside its route
(app/api/contract.py), the bodies' schemas generated from their models (app/schemas.py)."""

from __future__ import annotations

import copy
import importlib
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .. import schemas
from .contract import DECLARED, REF_TEMPLATE, ComponentSchema, Schema, header_parameter, json_body

OPENAPI_VERSION = "3.1.0"

# Every module that routes a documented operation, imported to declare them; their order is
# the document's order of paths.
ROUTE_MODULES = (
    "app.api.auth",
    "app.api.org",
    "app.api.webhooks",
    "app.api.tokens",
    "app.api.files",
    "app.api.versions",
    "app.api.links",
    "app.api.uploads",
    "app.api.folders",
    "app.api.archives",
    "app.api.trash",
    "app.api.activity",
    "app.api.requests",
    "app.api.health",
    "app.api.metrics",
    "app.api.openapi",
)


def component_schemas() -> dict[str, Schema]:
    """Every body's schema: requests as they are read, responses as they are written."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in schemas.REQUESTS),
        *((model, "serialization") for model in schemas.RESPONSES),
    ]
    _, generated = models_json_schema(
        models, ref_template=REF_TEMPLATE, schema_generator=ComponentSchema
    )
    return dict(sorted(generated["$defs"].items()))


SECURITY_SCHEMES: dict[str, Schema] = {
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "coffer_session",
        "description": "The server-side session set by register or login (HttpOnly, "
        "SameSite=Lax, Secure in production).",
    },
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "The session's CSRF token (from register, login or GET /api/auth/csrf); "
        "required with the session cookie on POST, PUT, PATCH and DELETE.",
    },
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from POST /api/tokens; needs no CSRF token.",
    },
}

REQUEST_ID_HEADER: Schema = {
    "description": "The client's X-Request-ID if well-formed (at most 128 characters of "
    "[A-Za-z0-9._:-]), else a new one.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}


def paths() -> dict[str, Any]:
    """Each route's declared operation, by path then method: the document's `paths`."""
    for module in ROUTE_MODULES:
        importlib.import_module(module)  # importing a module declares its routes
    # ROUTE_MODULES' order, each module's routes as declared (sorted() is stable).
    order = {module: n for n, module in enumerate(ROUTE_MODULES)}
    declared = sorted(DECLARED.values(), key=lambda d: order.get(d.module, len(order)))
    found: dict[str, Any] = {}
    for entry in declared:
        found.setdefault(entry.path, {})[entry.method] = entry.operation
    return found


# What Coffer sends to a registered endpoint (OpenAPI 3.1 `webhooks`).
WEBHOOKS: dict[str, Any] = {
    "fileEvent": {
        "post": {
            "operationId": "fileEvent",
            "summary": "A file became ready, failed validation, or was deleted",
            "tags": ["webhooks"],
            "description": "Sent by a worker after the change commits; retried on a non-2xx "
            "answer, a timeout (10 s) or a connection error after WEBHOOK_RETRY_SECONDS (10 s, "
            "1 min, 10 min, 1 h, 6 h), then given up. Redirects are not followed.",
            "parameters": [
                header_parameter(
                    "Coffer-Event-Id",
                    {"type": "string", "format": "uuid"},
                    "The event's id, the same on every retry: drop an event you already have.",
                ),
                header_parameter(
                    "Coffer-Signature",
                    {"type": "string", "pattern": "^t=[0-9]+,v1=[0-9a-f]{64}$"},
                    '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with '
                    "the endpoint's secret>`.",
                ),
            ],
            "requestBody": json_body(schemas.WebhookEvent),
            "responses": {"2XX": {"description": "Received; anything else is retried."}},
        }
    }
}


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Coffer",
            "version": "1.0.0",
            "description": "A multi-tenant file store. JSON in, JSON out; every error is "
            '`{"error": "<message>", "code": "<snake_case_code>"}`. Request bodies other than '
            "uploads are limited to 1 MiB.",
            "contact": {"email": "security@coffer.example"},
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "auth"},
            {"name": "organization"},
            {"name": "webhooks"},
            {"name": "tokens"},
            {"name": "files"},
            {"name": "versions"},
            {"name": "links"},
            {"name": "requests"},
            {"name": "uploads"},
            {"name": "folders"},
            {"name": "trash"},
            {"name": "operations"},
        ],
        "paths": paths(),
        "webhooks": WEBHOOKS,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": SECURITY_SCHEMES,
            "headers": {"RequestId": REQUEST_ID_HEADER},
        },
    }


def document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI document, safe for the caller to change."""
    return copy.deepcopy(_document())
