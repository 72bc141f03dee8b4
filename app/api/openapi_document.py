"""The OpenAPI 3.1 document of Coffer's HTTP API: the operations as a table, the bodies'
schemas generated from their models (app/schemas.py)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema

from .. import schemas
from ..models import MAX_ID

OPENAPI_VERSION = "3.1.0"
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


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The optional query parameters a model reads, with their schemas and descriptions."""
    generated = model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=ComponentSchema)
    parameters = []
    for name, schema in generated["properties"].items():
        description = schema.pop("description")
        parameters.append(query_parameter(name, schema, description))
    return parameters


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


def user_activation(action: str, active: bool) -> dict[str, Any]:
    """POST /api/org/users/{user_id}/activate or /deactivate."""
    responses: dict[str, Any] = {
        "200": response(
            f"The user, now {'active' if active else 'inactive'}.", ref(schemas.UserActivation)
        ),
        "400": E400_WRITE,
        "401": E401,
        "403": E403_ADMIN,
        "404": error("no such user in the organization.", "not_found"),
    }
    if not active:
        responses["409"] = error("an admin cannot deactivate themselves.", "cannot_deactivate_self")
    return {
        "post": operation(
            f"{action}User",
            f"{action.capitalize()} a user (admin)",
            "organization",
            responses,
            security=WRITE,
            parameters=[USER_ID],
            description="A deactivated user's sessions and tokens stop working at once."
            if not active
            else None,
        )
    }


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


PATHS: dict[str, Any] = {
    "/api/auth/register": {
        "post": operation(
            "register",
            "Create an account, and its organization when the name is new",
            "auth",
            {
                "201": response(
                    "Registered and logged in (session cookie set).", ref(schemas.Identity)
                ),
                "400": error(
                    "the body is not a JSON object of the fields, the email is malformed, the "
                    "password is shorter than 10 characters or one of the 10,000 most common "
                    "(weak_password) or longer than 72 bytes (invalid_password), or the "
                    "invite code is wrong, used or expired.",
                    *JSON_BODY_CODES,
                    "invalid_email",
                    "weak_password",
                    "invalid_password",
                    "invite_invalid",
                ),
                "409": error(
                    "the email is taken, the organization needs an invite, or a concurrent "
                    "registration took either first.",
                    "email_taken",
                    "invite_required",
                    "conflict",
                ),
                "413": E413_JSON,
                "429": error(
                    "too many registrations from this address; `Retry-After` says when to try "
                    "again.",
                    "rate_limited",
                ),
            },
            security=PUBLIC,
            body=json_body(schemas.RegisterRequest),
        )
    },
    "/api/auth/login": {
        "post": operation(
            "login",
            "Log in; the session id is rotated",
            "auth",
            {
                "200": response("Logged in (session cookie set).", ref(schemas.Identity)),
                "400": error("the body is not a JSON object of the fields.", *JSON_BODY_CODES),
                "401": error(
                    "alike for an unknown email and a wrong password.", "invalid_credentials"
                ),
                "403": error("only after a correct password.", "account_disabled"),
                "413": E413_JSON,
                "429": error(
                    "too many attempts; `Retry-After` says when to try again.", "rate_limited"
                ),
            },
            security=PUBLIC,
            body=json_body(schemas.LoginRequest),
        )
    },
    "/api/auth/logout": {
        "post": operation(
            "logout",
            "Destroy the server-side session",
            "auth",
            {"200": response("Logged out.", ref(schemas.Success)), "400": E400_WRITE, "401": E401},
            security=WRITE,
        )
    },
    "/api/auth/me": {
        "get": operation(
            "me",
            "Who the caller is",
            "auth",
            {"200": response("The caller.", ref(schemas.Me)), "401": E401},
            security=READ,
        )
    },
    "/api/auth/csrf": {
        "get": operation(
            "csrf",
            "The CSRF token of the current session",
            "auth",
            {"200": response("The token.", ref(schemas.CsrfToken))},
            security=PUBLIC,
        )
    },
    "/api/org": {
        "get": operation(
            "getOrganization",
            "The caller's organization and its storage use",
            "organization",
            {"200": response("The organization.", ref(schemas.Organization)), "401": E401},
            security=READ,
        )
    },
    "/api/org/invites": {
        "post": operation(
            "createInvite",
            "Issue a single-use invite code (admin)",
            "organization",
            {
                "201": response("The code, shown once.", ref(schemas.Invite)),
                "400": E400_WRITE,
                "401": E401,
                "403": E403_ADMIN,
            },
            security=WRITE,
        )
    },
    "/api/org/users": {
        "get": operation(
            "listUsers",
            "Every user of the organization (admin)",
            "organization",
            {"200": response("The users.", ref(schemas.UserList)), "401": E401, "403": E403_ADMIN},
            security=READ,
        )
    },
    "/api/org/users/{user_id}/deactivate": user_activation("deactivate", active=False),
    "/api/org/users/{user_id}/activate": user_activation("activate", active=True),
    "/api/org/webhooks": {
        "post": operation(
            "createWebhook",
            "Register an endpoint for file events (admin)",
            "webhooks",
            {
                "201": with_links(
                    response(
                        "The endpoint with its signing secret, shown once.",
                        ref(schemas.IssuedWebhook),
                    ),
                    DeleteWebhook=link("deleteWebhook", webhook_id="$response.body#/id"),
                    ListDeliveries=link("listWebhookDeliveries", webhook_id="$response.body#/id"),
                ),
                "400": error(
                    "the body is not a JSON object of the fields, the URL is not http(s), "
                    "carries credentials, does not resolve, or its host is or resolves to a "
                    "loopback, private, link-local or other internal address "
                    "(`url_not_allowed`, unless WEBHOOK_ALLOW_PRIVATE), or a session write "
                    "lacks its CSRF token.",
                    *JSON_BODY_CODES,
                    "url_not_allowed",
                    "csrf_failed",
                ),
                "401": E401,
                "403": E403_ADMIN,
                "413": E413_JSON,
            },
            security=WRITE,
            body=json_body(schemas.WebhookRequest),
            description="Each event is POSTed to the URL as a WebhookEvent (see `webhooks` "
            "in this document), signed with the secret.",
        ),
        "get": operation(
            "listWebhooks",
            "The organization's endpoints, never their secrets (admin)",
            "webhooks",
            {
                "200": response("The endpoints.", ref(schemas.WebhookList)),
                "401": E401,
                "403": E403_ADMIN,
            },
            security=READ,
        ),
    },
    "/api/org/webhooks/{webhook_id}": {
        "delete": operation(
            "deleteWebhook",
            "Remove an endpoint; nothing more is sent to it (admin)",
            "webhooks",
            {
                "204": response("Deleted."),
                "400": E400_WRITE,
                "401": E401,
                "403": E403_ADMIN,
                "404": E404_WEBHOOK,
            },
            security=WRITE,
            parameters=[WEBHOOK_ID],
        )
    },
    "/api/org/webhooks/{webhook_id}/deliveries": {
        "get": operation(
            "listWebhookDeliveries",
            "An endpoint's last 100 delivery attempts, newest first (admin)",
            "webhooks",
            {
                "200": response("The attempts.", ref(schemas.DeliveryList)),
                "401": E401,
                "403": E403_ADMIN,
                "404": E404_WEBHOOK,
            },
            security=READ,
            parameters=[WEBHOOK_ID],
        )
    },
    "/api/tokens": {
        "post": operation(
            "createToken",
            "Issue an API token",
            "tokens",
            {
                "201": with_links(
                    response("The token with its secret, shown once.", ref(schemas.IssuedToken)),
                    RevokeToken=link("revokeToken", token_id="$response.body#/id"),
                ),
                "400": error(
                    "the body is not a JSON object of the fields, or a session write lacks "
                    "its CSRF token.",
                    *JSON_BODY_CODES,
                    "csrf_failed",
                ),
                "401": E401,
                "413": E413_JSON,
            },
            security=WRITE,
            body=json_body(schemas.TokenRequest),
        ),
        "get": operation(
            "listTokens",
            "The caller's tokens, never their secrets",
            "tokens",
            {"200": response("The tokens.", ref(schemas.TokenList)), "401": E401},
            security=READ,
        ),
    },
    "/api/tokens/{token_id}": {
        "delete": operation(
            "revokeToken",
            "Revoke a token at once",
            "tokens",
            {
                "204": response("Revoked."),
                "400": E400_WRITE,
                "401": E401,
                "404": error("not one of the caller's tokens.", "not_found"),
            },
            security=WRITE,
            parameters=[TOKEN_ID],
        )
    },
    "/api/files/upload": {
        "post": operation(
            "uploadFile",
            "Upload a file; answered before validation",
            "files",
            {
                "201": with_links(
                    response("Stored and queued for validation.", ref(schemas.Upload)),
                    GetFile=link("getFile", file_id="$response.body#/file_id"),
                    DownloadFile=link("downloadFile", file_id="$response.body#/file_id"),
                    DeleteFile=link("deleteFile", file_id="$response.body#/file_id"),
                    CreateShareLink=link("createShareLink", file_id="$response.body#/file_id"),
                ),
                "400": error(
                    "no `file` part, a name that is empty once cleaned, an empty file, part "
                    "headers that are not UTF-8, more than 100 form parts, or a session write "
                    "without its CSRF token.",
                    "no_file",
                    "invalid_filename",
                    "empty_file",
                    "invalid_part_header",
                    "too_many_parts",
                    "csrf_failed",
                ),
                "401": E401,
                "413": plain_text_too(
                    error(
                        "over MAX_FILE_SIZE_MB. A declared "
                        "Content-Length over the limit is refused by the server before the "
                        "body is read, in plain text.",
                        "file_too_large",
                    )
                ),
                "507": error(
                    "the file does not fit in the organization's quota, or the server's disk "
                    "is full.",
                    "quota_exceeded",
                    "insufficient_storage",
                ),
            },
            security=WRITE,
            body={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": ref(schemas.UploadRequest),
                        "encoding": {"file": {"contentType": "application/octet-stream"}},
                    }
                },
            },
        )
    },
    "/api/files": {
        "get": operation(
            "listFiles",
            "The organization's files, newest first (ties by id)",
            "files",
            {
                "200": response("One page.", ref(schemas.FileList)),
                "400": error("`field` names the parameter.", "invalid_parameter"),
                "401": E401,
            },
            security=READ,
            parameters=query_parameters(schemas.FileListQuery),
        )
    },
    "/api/files/{file_id}": {
        "get": operation(
            "getFile",
            "Everything known about one file",
            "files",
            {
                "200": response("The file.", ref(schemas.FileDetails)),
                "401": E401,
                "404": error("no such file in the organization.", "not_found"),
            },
            security=READ,
            parameters=[FILE_ID],
        ),
        "delete": operation(
            "deleteFile",
            "Delete a file (its uploader or an admin); the bytes and quota go at once",
            "files",
            {
                "204": response("Deleted."),
                "400": E400_WRITE,
                "401": E401,
                "403": error("neither the uploader nor an admin.", "forbidden"),
                "404": error("no such file in the organization.", "not_found"),
            },
            security=WRITE,
            parameters=[FILE_ID],
        ),
    },
    "/api/files/{file_id}/download": {
        "get": operation(
            "downloadFile",
            "The exact bytes of a ready file, as an attachment",
            "files",
            {
                **DOWNLOAD_ANSWERS,
                "401": E401,
                "404": error("no such file in the organization.", "not_found"),
                "409": response(
                    "`not_ready`: pending, processing or failed.", ref(schemas.NotReady)
                ),
                "410": error(
                    "the file is ready but its bytes are missing from storage.", "file_missing"
                ),
                "416": error(
                    "a well-formed Range entirely outside the file.", "range_not_satisfiable"
                ),
            },
            security=READ,
            parameters=[FILE_ID, *DOWNLOAD_HEADERS],
        )
    },
    "/api/files/{file_id}/links": {
        "post": operation(
            "createShareLink",
            "Make a share link to a ready file; its URL is shown once",
            "links",
            {
                "201": with_links(
                    response(
                        "The link; `url` holds its secret and works without an account.",
                        ref(schemas.IssuedShareLink),
                    ),
                    RevokeShareLink=link("revokeShareLink", link_id="$response.body#/id"),
                ),
                "400": error(
                    "the body is not a JSON object of the fields (`expires_in` 60 to 2592000, "
                    "`max_downloads` at least 1), or a session write lacks its CSRF token.",
                    *JSON_BODY_CODES,
                    "csrf_failed",
                ),
                "401": E401,
                "404": error("no such file in the organization.", "not_found"),
                "409": response(
                    "`not_ready`: pending, processing or failed.", ref(schemas.NotReady)
                ),
                "413": E413_JSON,
            },
            security=WRITE,
            parameters=[FILE_ID],
            body={"required": False, "content": json_content(ref(schemas.ShareLinkRequest))},
            description="No body at all takes every default, as `{}` does.",
        ),
        "get": operation(
            "listShareLinks",
            "A file's usable links (not expired, not used up), never their secrets",
            "links",
            {
                "200": response("The links, oldest first.", ref(schemas.ShareLinkList)),
                "401": E401,
                "404": error("no such file in the organization.", "not_found"),
            },
            security=READ,
            parameters=[FILE_ID],
        ),
    },
    "/api/links/{link_id}": {
        "delete": operation(
            "revokeShareLink",
            "Revoke a share link at once (its creator, the file's uploader or an admin)",
            "links",
            {
                "204": response("Revoked."),
                "400": E400_WRITE,
                "401": E401,
                "403": error(
                    "neither the link's creator, the file's uploader nor an admin.", "forbidden"
                ),
                "404": error("no such link in the organization.", "not_found"),
            },
            security=WRITE,
            parameters=[LINK_ID],
        )
    },
    "/s/{secret}": {
        "get": operation(
            "downloadSharedFile",
            "A shared file, without an account, as the download endpoint gives it",
            "links",
            {
                **DOWNLOAD_ANSWERS,
                "404": error(
                    "alike for an unknown, expired, revoked or used up link, and for a file "
                    "that was deleted.",
                    "not_found",
                ),
                "410": error(
                    "the file is ready but its bytes are missing from storage.", "file_missing"
                ),
                "416": error(
                    "a well-formed Range entirely outside the file.", "range_not_satisfiable"
                ),
                "429": error(
                    "too many requests from this address (SHARE_LIMIT_PER_ADDRESS); "
                    "`Retry-After` says when to try again.",
                    "rate_limited",
                ),
            },
            security=PUBLIC,
            parameters=[SECRET, *DOWNLOAD_HEADERS],
            description="Every answer that sends bytes (200, 302 to the store, 206 of any "
            "range) uses one of the link's `max_downloads`; 304 and HEAD do not.",
        )
    },
    "/api/uploads": {
        "options": operation(
            "tusOptions",
            "What the server speaks of tus",
            "uploads",
            {
                "204": tus_response(
                    "The protocol's version, extensions and the largest upload.",
                    **{
                        "Tus-Version": header({"type": "string"}, "Versions spoken: 1.0.0."),
                        "Tus-Extension": header(
                            {"type": "string"},
                            "creation,creation-with-upload,termination,expiration",
                        ),
                        "Tus-Max-Size": header(NUMBER, "MAX_FILE_SIZE_MB in bytes."),
                    },
                )
            },
            security=PUBLIC,
        ),
        "get": operation(
            "listUploads",
            "Unfinished resumable uploads: an admin's organization's all, a member's own",
            "uploads",
            {
                "200": response(
                    "Unfinished, unexpired uploads, newest first.",
                    ref(schemas.UnfinishedUploadList),
                ),
                "401": E401,
            },
            security=READ,
            description="A JSON listing, not a tus request: it needs no Tus-Resumable. An "
            "admin may terminate any of them; only its uploader may send its bytes.",
        ),
        "post": operation(
            "createUpload",
            "Begin a resumable upload; its whole length is held against the quota",
            "uploads",
            {
                "201": tus_response(
                    "Created; with a body, its bytes are stored at once.",
                    Location=header(
                        {"type": "string", "pattern": "^/api/uploads/"},
                        "/api/uploads/<file_id>: where to send the bytes.",
                    ),
                    **{"Upload-Expires": header({"type": "string"}, EXPIRES_DESCRIPTION)},
                ),
                "400": tus_error(
                    "Upload-Length missing, not a number or 0; no `filename` in Upload-Metadata, "
                    "not base64 of UTF-8, or empty once cleaned; a body without Content-Length; "
                    "or a session write without its CSRF token.",
                    "invalid_upload_length",
                    "invalid_filename",
                    "empty_file",
                    "length_required",
                    "incomplete_body",
                    "csrf_failed",
                ),
                "401": E401,
                "412": E412_TUS,
                "413": plain_text_too(
                    tus_error(
                        "Upload-Length over MAX_FILE_SIZE_MB, or a body past Upload-Length.",
                        "file_too_large",
                        "past_upload_length",
                        "payload_too_large",
                    )
                ),
                "507": tus_error(
                    "the upload does not fit in the organization's quota, with every unfinished "
                    "upload's holding counted, or the server's disk is full.",
                    "quota_exceeded",
                    "insufficient_storage",
                ),
            },
            security=WRITE,
            parameters=[
                TUS_RESUMABLE,
                header_parameter(
                    "Upload-Length",
                    {"type": "string", "pattern": "^[1-9][0-9]{0,14}$"},
                    "The file's size in bytes (at least 1).",
                ),
                header_parameter(
                    "Upload-Metadata",
                    {
                        "type": "string",
                        "pattern": "^filename (?:[A-Za-z0-9+/]{4})*"
                        "(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$",
                    },
                    "`filename <base64 of the UTF-8 name>`, as tus writes metadata.",
                ),
            ],
            body={"required": False, **OFFSET_BODY},
            description="creation-with-upload: a body of type application/offset+octet-stream "
            "is the upload's first bytes, and the answer carries Upload-Offset.",
        ),
    },
    "/api/uploads/{file_id}": {
        "head": operation(
            "getUploadOffset",
            "Where an upload stands",
            "uploads",
            {
                "200": tus_response(
                    "The offset to resume from. A finished upload answers its whole length "
                    "while its file exists.",
                    **{
                        "Upload-Offset": UPLOAD_OFFSET,
                        "Upload-Length": header(NUMBER, "The upload's size."),
                        "Upload-Expires": UPLOAD_EXPIRES,
                        "Upload-Metadata": {"schema": {"type": "string"}},
                        "Cache-Control": header({"type": "string", "const": "no-store"}, "-"),
                    },
                ),
                "401": E401,
                "404": E404_UPLOAD,
                "412": E412_TUS,
            },
            security=READ,
            parameters=[UPLOAD_ID, TUS_RESUMABLE],
        ),
        "patch": operation(
            "appendToUpload",
            "Send bytes from Upload-Offset; the last byte makes the file, pending",
            "uploads",
            {
                "204": tus_response(
                    "Stored; the upload's new offset. At Upload-Length the file <file_id> "
                    "exists, `pending`, and is validated as any upload.",
                    **{"Upload-Offset": UPLOAD_OFFSET, "Upload-Expires": UPLOAD_EXPIRES},
                ),
                "400": tus_error(
                    "Upload-Offset missing or not a number, a body without Content-Length, or "
                    "a session write without its CSRF token.",
                    "invalid_upload_offset",
                    "length_required",
                    "incomplete_body",
                    "csrf_failed",
                ),
                "401": E401,
                "403": tus_error(
                    "an admin's PATCH to an upload another user started: only its uploader "
                    "sends its bytes.",
                    "forbidden",
                ),
                "404": E404_UPLOAD,
                "409": tus_error(
                    "Upload-Offset is not the server's (HEAD for it), or another PATCH holds "
                    "the upload.",
                    "offset_mismatch",
                    "upload_locked",
                ),
                "412": E412_TUS,
                "413": plain_text_too(
                    tus_error(
                        "the body goes past Upload-Length.",
                        "past_upload_length",
                        "payload_too_large",
                    )
                ),
                "415": tus_error(
                    "the body is not application/offset+octet-stream.", "unsupported_media_type"
                ),
                "507": tus_error("the server's disk is full.", "insufficient_storage"),
            },
            security=WRITE,
            parameters=[
                UPLOAD_ID,
                TUS_RESUMABLE,
                header_parameter(
                    "Upload-Offset", NUMBER, "Where these bytes start: the server's offset."
                ),
            ],
            body={"required": True, **OFFSET_BODY},
            description="Send at most about 8 MiB per PATCH: the server takes a request only "
            "once its whole body has arrived, so a dropped connection loses that PATCH.",
        ),
        "delete": operation(
            "terminateUpload",
            "Remove an unfinished upload (its uploader or an admin); its bytes go and its "
            "holding is freed",
            "uploads",
            {
                "204": tus_response("Terminated."),
                "400": E400_WRITE,
                "401": E401,
                "404": E404_UPLOAD,
                "409": tus_error("a PATCH is writing to the upload.", "upload_locked"),
                "412": E412_TUS,
            },
            security=WRITE,
            parameters=[UPLOAD_ID, TUS_RESUMABLE],
        ),
    },
    "/healthz": {
        "get": operation(
            "healthz",
            "Liveness: the process serves",
            "operations",
            {"200": response("Alive.", ref(schemas.Health))},
            security=PUBLIC,
        )
    },
    "/readyz": {
        "get": operation(
            "readyz",
            "Readiness: the database, Redis and the storage backend answer",
            "operations",
            {
                "200": response("Ready.", ref(schemas.Readiness)),
                "503": response(
                    "A check failed; its message replaces `ok`.", ref(schemas.Readiness)
                ),
            },
            security=PUBLIC,
        )
    },
    "/metrics": {
        "get": operation(
            "metrics",
            "Prometheus metrics of every web thread and worker process of this host",
            "operations",
            {
                "200": {
                    **response("The metrics, in Prometheus's text exposition format 0.0.4."),
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "404": error(
                    "the client's address is not in METRICS_ALLOW and it sent no "
                    "`Authorization: Bearer <METRICS_TOKEN>`: the answer of an unknown path.",
                    "not_found",
                ),
            },
            security=PUBLIC,
            description="Allowed from the addresses in `METRICS_ALLOW` (default `127.0.0.1`; "
            "the client address after `TRUSTED_PROXIES`), or with `Authorization: Bearer "
            "<METRICS_TOKEN>` when that setting is set. Any other request for it, whatever "
            "its method, is answered `404` as an unknown path is.",
        )
    },
    "/api/openapi.json": {
        "get": operation(
            "openapi",
            "This document",
            "operations",
            {"200": response("The OpenAPI document.", ref(schemas.OpenAPIDocument))},
            security=PUBLIC,
        )
    },
}


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
            {"name": "links"},
            {"name": "uploads"},
            {"name": "operations"},
        ],
        "paths": PATHS,
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
