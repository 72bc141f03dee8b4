"""The contract of each HTTP route, declared beside it: a blueprint whose routes take their
OpenAPI operation (`openapi=`), and the pieces those operations are written with.
app/api/openapi_document.py builds the document from what is declared here."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from flask.typing import RouteCallable
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .. import schemas
from ..authentication import changes_data
from ..models import MAX_ID

REF_TEMPLATE = "#/components/schemas/{model}"

# Security requirements: any one entry of a list is enough.
PUBLIC: list[dict[str, list[str]]] = []
READ: list[dict[str, list[str]]] = [{"bearerToken": []}, {"sessionCookie": []}]
# A write by session cookie also needs the CSRF token; a bearer token needs none.
WRITE: list[dict[str, list[str]]] = [{"bearerToken": []}, {"sessionCookie": [], "csrfToken": []}]

Schema = dict[str, Any]


def ref(model: type[BaseModel]) -> Schema:
    """A reference to a model's component schema."""
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


class ComponentSchema(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every property (the name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        """Never: titles repeat the property names."""
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        """The field's schema with its default, unless that is None (absent means null)."""
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None:
            del json_schema["default"]
        return json_schema


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The optional query parameters a model reads, with their schemas and descriptions."""
    generated = model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=ComponentSchema)
    parameters = []
    for name, schema in generated["properties"].items():
        description = schema.pop("description")
        parameters.append(query_parameter(name, schema, description))
    return parameters


def json_content(schema: Schema) -> dict[str, Any]:
    """A JSON media type entry."""
    return {"application/json": {"schema": schema}}


def response(description: str, schema: Schema | None = None) -> dict[str, Any]:
    """A response, JSON when it has a schema, always with X-Request-ID."""
    answer: dict[str, Any] = {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
    }
    if schema is not None:
        answer["content"] = json_content(schema)
    return answer


def error(description: str, *codes: str) -> dict[str, Any]:
    """An error response in the common shape, whose `code` is one of `codes`."""
    listed = ", ".join(f"`{code}`" for code in codes)
    schema = {"allOf": [ref(schemas.Error), {"properties": {"code": {"enum": list(codes)}}}]}
    return response(f"{listed}: {description}", schema)


def link(operation_id: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: where a value of this response is used next."""
    return {"operationId": operation_id, "parameters": parameters}


def with_links(answer: dict[str, Any], **links: dict[str, Any]) -> dict[str, Any]:
    """The response with these links added."""
    return {**answer, "links": links}


def plain_text_too(answer: dict[str, Any]) -> dict[str, Any]:
    """The response, which the HTTP server itself may also send as plain text."""
    content = {**answer["content"], "text/plain": {"schema": {"type": "string"}}}
    return {**answer, "content": content}


# Errors shared by many operations.
E401 = error("no valid session or token.", "unauthorized")
E400_WRITE = error("a session write without its CSRF token.", "csrf_failed")
E403_ADMIN = error("only the organization's admin may do this.", "forbidden")
E413_JSON = error("the body is over 1 MiB.", "payload_too_large")
JSON_BODY_CODES = ("invalid_json", "missing_field", "invalid_field")


# What a read-only API token gets for a change of data (app/authentication.py
# check_token_access); the document adds it to every operation that changes data.
SCOPE_REFUSAL_CODE = "insufficient_scope"
SCOPE_REFUSAL = "a read-only API token asked to change data."


def with_scope_refusal(op: dict[str, Any]) -> dict[str, Any]:
    """A copy of the operation whose 403 answer lists a read-only token's refusal too."""
    op = copy.deepcopy(op)  # the responses are shared (E403_ADMIN ...): never changed in place
    responses = op["responses"]
    existing = responses.get("403")
    if existing is None:
        responses["403"] = error(SCOPE_REFUSAL, SCOPE_REFUSAL_CODE)
        return op
    schema = existing["content"]["application/json"]["schema"]
    codes: list[str] = schema["allOf"][1]["properties"]["code"]["enum"]
    codes.append(SCOPE_REFUSAL_CODE)
    existing["description"] += f" `{SCOPE_REFUSAL_CODE}`: {SCOPE_REFUSAL}"
    return op


def operation(
    op_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    security: list[dict[str, list[str]]],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """One operation object."""
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "security": security,
        "responses": responses,
    }
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": json_content(ref(model))}


def optional_json_body(model: type[BaseModel]) -> dict[str, Any]:
    """A JSON request body that may be left out (no body takes every default)."""
    return {"required": False, "content": json_content(ref(model))}


def path_parameter(name: str, schema: Schema, description: str) -> dict[str, Any]:
    """A required path parameter."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def query_parameter(name: str, schema: Schema, description: str) -> dict[str, Any]:
    """An optional query parameter; sent empty (`?name=`) it takes its default."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "schema": schema,
        "description": description,
    }


USER_ID = path_parameter(
    "user_id",
    {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    "A user of the caller's organization.",
)
INVITE_ID = path_parameter(
    "invite_id",
    {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    "A pending invite of the caller's organization.",
)
TOKEN_ID = path_parameter(
    "token_id", {"type": "integer", "minimum": 0, "maximum": MAX_ID}, "One of the caller's tokens."
)
FILE_ID = path_parameter(
    "file_id",
    {"type": "string", "format": "uuid"},
    "A file of the caller's organization; a malformed id is a file that does not exist (404).",
)


LINK_ID = path_parameter(
    "link_id",
    {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    "A share link of the caller's organization.",
)
WEBHOOK_ID = path_parameter(
    "webhook_id",
    {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    "An endpoint of the caller's organization.",
)
SECRET = path_parameter(
    "secret",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"},
    "The secret at the end of a share link's `url`.",
)
E404_WEBHOOK = error("no such endpoint in the organization.", "not_found")


def header_parameter(name: str, schema: Schema, description: str, required: bool = True) -> Schema:
    """A request header."""
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": schema,
        "description": description,
    }


def header(schema: Schema, description: str) -> Schema:
    """A response header, always sent."""
    return {"required": True, "schema": schema, "description": description}


# tus 1.0.0 (https://tus.io/protocols/resumable-upload): its headers, in and out.
TUS_RESUMABLE = header_parameter(
    "Tus-Resumable",
    {"type": "string", "enum": ["1.0.0"]},
    "The protocol version; anything else is 412.",
)
UPLOAD_ID = path_parameter(
    "file_id",
    {"type": "string", "format": "uuid"},
    "An upload the caller started (or, for an admin, any of the organization's), from the "
    "Location of its creation; the file it becomes has the same id.",
)
NUMBER = {"type": "string", "pattern": "^[0-9]{1,15}$"}
TUS_HEADERS: dict[str, Schema] = {
    "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
    "Tus-Resumable": header({"type": "string", "const": "1.0.0"}, "The protocol version."),
}
UPLOAD_OFFSET = header(NUMBER, "The bytes received so far.")
EXPIRES_DESCRIPTION = (
    "When an unfinished upload expires (RFC 7231 date): RESUMABLE_EXPIRY_HOURS after its "
    "last PATCH."
)
UPLOAD_EXPIRES: Schema = {"schema": {"type": "string"}, "description": EXPIRES_DESCRIPTION}
OFFSET_BODY = {
    "content": {
        "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
}


def tus_response(description: str, **headers: Schema) -> dict[str, Any]:
    """A body-less tus answer with its headers."""
    return {"description": description, "headers": {**TUS_HEADERS, **headers}}


def tus_error(description: str, *codes: str) -> dict[str, Any]:
    """An error of a tus operation: the usual JSON, with Tus-Resumable."""
    answer = error(description, *codes)
    return {**answer, "headers": {**answer["headers"], **TUS_HEADERS}}


E412_TUS = tus_error(
    "no Tus-Resumable: 1.0.0 (the answer names it in Tus-Version).", "unsupported_version"
)
E404_UPLOAD = tus_error(
    "no such upload in the organization, or one the caller may not see (a member sees only "
    "their own; an admin, every one of the organization), or it expired, was terminated, or "
    "finished and its file was deleted.",
    "not_found",
)


DOWNLOAD_ANSWERS: dict[str, Any] = {
    "200": {
        "description": "The bytes, as an attachment with the validated MIME type.",
        "headers": {
            "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
            "Content-Disposition": {
                "required": True,
                "schema": {"type": "string", "pattern": "^attachment;"},
                "description": "`attachment` with the original name "
                "(RFC 6266 `filename*` when not ASCII).",
            },
            "ETag": {"required": True, "schema": {"type": "string"}},
            "X-Content-Type-Options": {
                "required": True,
                "schema": {"type": "string", "const": "nosniff"},
            },
        },
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    "206": {
        "description": "The requested range.",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    "302": {
        "description": "With S3_PRESIGNED_DOWNLOADS: to a presigned URL of the store, valid "
        "S3_PRESIGN_SECONDS, carrying the same Content-Disposition and Content-Type.",
        "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
    },
    "304": {"description": "Not modified (If-None-Match matched the ETag)."},
}

DOWNLOAD_HEADERS: list[dict[str, Any]] = [
    {
        "name": "Range",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "A byte range, e.g. `bytes=0-99`. One that cannot be "
        "parsed is ignored (200, the whole file).",
    },
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "The ETag of a copy the client holds.",
    },
]


@dataclass(frozen=True)
class Declared:
    """One documented operation: where it is routed, and by which blueprint module."""

    module: str
    endpoint: str
    path: str
    method: str
    operation: dict[str, Any]


# (path, method) -> its declaration, in the order the routes were declared.
DECLARED: dict[tuple[str, str], Declared] = {}


def openapi_path(rule: str) -> str:
    """A Flask rule such as /api/files/<uuid:file_id> as an OpenAPI path, /api/files/{file_id}."""
    return re.sub(r"<(?:[^<>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


class DocumentedBlueprint(Blueprint):
    """A blueprint whose routes may carry their OpenAPI operation: `@bp.get(rule, openapi=...)`.

    The operation is recorded with the route's full path and method when the route is
    declared, so the document is built without an app.
    """

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: RouteCallable | None = None,
        provide_automatic_options: bool | None = None,
        **options: Any,
    ) -> None:
        """Flask's add_url_rule, recording the rule's `openapi` operation first."""
        documented: dict[str, Any] | None = options.pop("openapi", None)
        if documented is not None:
            # Flask names an endpoint after its view unless told otherwise.
            name = endpoint or str(getattr(view_func, "__name__", ""))
            self.declare(rule, name, options.get("methods") or ["GET"], documented)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)

    def declare(
        self, rule: str, endpoint: str, methods: list[str], documented: dict[str, Any]
    ) -> None:
        """Record the operation of one route, at its path as Flask will mount it."""
        if len(methods) != 1:
            # One operation per method: a view serving several gets a route for each.
            raise TypeError(f"{rule!r}: declare one method per documented route, not {methods}")
        # As Flask joins a blueprint's prefix and a rule (BlueprintSetupState.add_url_rule).
        if self.url_prefix is not None:
            rule = (
                "/".join((self.url_prefix.rstrip("/"), rule.lstrip("/")))
                if rule
                else self.url_prefix
            )
        method = methods[0].lower()
        path = openapi_path(rule)
        name = f"{self.name}.{endpoint}"
        earlier = DECLARED.get((path, method))
        if earlier is not None and earlier.endpoint != name:
            raise ValueError(f"{method.upper()} {path} is documented by {earlier.endpoint} too")
        if documented["security"] and changes_data(method.upper(), name):
            # The operations that change data refuse read-only tokens: one rule, one place.
            documented = with_scope_refusal(documented)
        DECLARED[(path, method)] = Declared(self.import_name, name, path, method, documented)
