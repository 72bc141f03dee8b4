"""The OpenAPI document: valid, served, and in step with the routes the app really has."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from pydantic_core import PydanticCustomError

from app import schemas
from app.api.contract import DECLARED
from app.api.openapi_document import document
from app.services.accounts import normalize_email
from app.services.errors import DomainError

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
# Flask adds these to every rule by itself; the document describes the API's own methods.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
ERROR_SCHEMAS = {"#/components/schemas/Error", "#/components/schemas/NotReady"}
# The contract gives a failing readiness probe the shape of the probe, not of an error.
NOT_ERROR_SHAPED = {("/readyz", "get", "503")}


def openapi_path(rule: str) -> str:
    """A Flask rule such as /api/files/<file_id> written as an OpenAPI path template."""
    return re.sub(r"<(?:[^<>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def documented_routes(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Documented path -> its upper-case methods."""
    return {
        path: {method.upper() for method in item if method in HTTP_METHODS}
        for path, item in doc["paths"].items()
    }


def app_routes(app: Flask) -> dict[str, set[str]]:
    """The app's public routes (under /api, share links under /s/, the probes and /metrics)
    -> their methods. A share link's page and its preview image are the web app's (WEB.md)."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("web."):
            continue
        if not (
            rule.rule.startswith(("/api", "/s/"))
            or rule.rule in {"/healthz", "/readyz", "/metrics"}
        ):
            continue
        methods = set(rule.methods or ()) - IMPLICIT_METHODS
        routes.setdefault(openapi_path(rule.rule), set()).update(methods)
    return routes


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every documented operation."""
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def concrete(path: str) -> str:
    """The path with each parameter filled by a well-formed value of nobody's object."""
    values = {
        "file_id": "00000000-0000-4000-8000-000000000000",
        "user_id": "999999",
        "token_id": "999999",
        "link_id": "999999",
        "webhook_id": "999999",
        "invite_id": "999999",
        "request_id": "999999",
        "secret": "no-such-secret",
        "folder_id": "00000000-0000-4000-8000-000000000000",
        "number": "1",
        "item_id": "00000000-0000-4000-8000-000000000000",
    }
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)


def test_document_is_served_as_json_and_is_valid_openapi(client: FlaskClient) -> None:
    """GET /api/openapi.json answers the document, and it passes the OpenAPI meta-schema."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    served = response.get_json()
    assert served == document()
    assert served["openapi"].startswith("3.")
    schema = schemathesis.openapi.from_dict(served)
    schema.validate()  # raises on a document that breaks the OpenAPI 3.1 schema


def test_every_route_is_documented_with_its_methods(app: Flask) -> None:
    """No endpoint is missing from the document, and no method is missing or extra."""
    assert app_routes(app) == documented_routes(document())


def test_every_documented_operation_is_routed(app: Flask) -> None:
    """Each documented path and method reaches a view: never the generic 404/405."""
    adapter = app.url_map.bind("localhost")
    for path, method, _ in operations(document()):
        endpoint, _args = adapter.match(concrete(path), method=method.upper())
        assert endpoint != "static", (method, path)


def test_each_operation_is_declared_by_the_view_that_serves_it(app: Flask) -> None:
    """The operation of a path and method is the one declared on the route the app sends
    that request to."""
    adapter = app.url_map.bind("localhost")
    for path, method, op in operations(document()):
        endpoint, _args = adapter.match(concrete(path), method=method.upper())
        declared = DECLARED[(path, method)]
        assert declared.endpoint == endpoint, (method, path)
        assert declared.operation == op, (method, path)


def test_path_parameters_match_the_rules(app: Flask) -> None:
    """The document names exactly the parameters each route takes from its path."""
    rule_arguments = {
        openapi_path(rule.rule): set(rule.arguments) for rule in app.url_map.iter_rules()
    }
    for path, _method, op in operations(document()):
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == rule_arguments[path], path
        assert set(re.findall(r"\{([^}]+)\}", path)) == declared, path


def test_every_error_response_uses_the_error_shape() -> None:
    """Each documented 4xx/5xx answer is {error, code} with its possible codes listed
    (409 not_ready adds the file's status)."""
    doc = document()
    for path, method, op in operations(doc):
        for status, answer in op["responses"].items():
            if int(status) < 400 or (path, method, status) in NOT_ERROR_SHAPED:
                continue
            schema = answer["content"]["application/json"]["schema"]
            if schema.get("$ref") == "#/components/schemas/NotReady":
                continue
            base, codes = schema["allOf"]
            assert base["$ref"] in ERROR_SCHEMAS, (method, path, status)
            listed = codes["properties"]["code"]["enum"]
            assert listed and all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in listed), listed
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "code"]


def test_both_security_schemes_are_described() -> None:
    """Session cookie with its CSRF header, and bearer token."""
    schemes = document()["components"]["securitySchemes"]
    assert schemes["sessionCookie"]["type"] == "apiKey"
    assert schemes["sessionCookie"]["in"] == "cookie"
    assert schemes["sessionCookie"]["name"] == "coffer_session"
    assert schemes["csrfToken"]["in"] == "header"
    assert schemes["csrfToken"]["name"] == "X-CSRF-Token"
    assert schemes["bearerToken"]["type"] == "http"
    assert schemes["bearerToken"]["scheme"] == "bearer"


def test_protected_operations_declare_their_errors() -> None:
    """Protected operations document 401; cookie writes document the CSRF 400."""
    for path, method, op in operations(document()):
        if not op["security"]:
            continue
        assert "401" in op["responses"], (method, path)
        session = next(s for s in op["security"] if "sessionCookie" in s)
        if method != "get":
            assert "csrfToken" in session, (method, path)
            assert "400" in op["responses"], (method, path)
        else:
            assert "csrfToken" not in session, (method, path)


@pytest.mark.parametrize(
    ("path", "method", "op"),
    [pytest.param(*entry, id=f"{entry[1].upper()} {entry[0]}") for entry in operations(document())],
)
def test_declared_security_is_enforced(
    client: FlaskClient, path: str, method: str, op: dict[str, Any]
) -> None:
    """An operation that declares security answers 401 JSON without credentials; a public one
    never does."""
    response = client.open(concrete(path), method=method.upper(), json={})
    body = response.get_json()
    response.close()
    if op["security"]:
        assert response.status_code == 401, body
        assert body["code"] == "unauthorized"
    else:
        assert response.status_code != 401, body
        assert str(response.status_code) in op["responses"], body


def test_list_files_documents_cursor_pagination() -> None:
    """GET /api/files takes ?cursor= and answers next_cursor, as the listing does."""
    doc = document()
    op = doc["paths"]["/api/files"]["get"]
    assert {p["name"] for p in op["parameters"]} == {
        *("page", "limit", "status", "cursor"),
        *("folder_id", "q", "sort", "order"),
    }
    page = doc["components"]["schemas"]["FileList"]
    assert "next_cursor" in page["required"]


def test_upload_is_documented_as_multipart_with_a_file_field() -> None:
    """The upload body is multipart/form-data with the binary field `file`."""
    body = document()["paths"]["/api/files/upload"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    upload = document()["components"]["schemas"][form["$ref"].rsplit("/", 1)[-1]]
    assert upload["required"] == ["file"]
    assert upload["properties"]["file"]["format"] == "binary"


TEXT_SAMPLES = [
    "Acme",
    "  Acme Corp \r\n",
    "\u3000Ärzte\u00a0",
    "a" * 5,
    " " * 9 + "a" * 5 + "\u0085" * 9,
    "a" * 6,
    "",
    "   ",
    "Ac\x00me",
    "Acme\nInc",
    "Ac\x85me",
    "\x85" + "0" + "\x85" * 9,
]


@pytest.mark.parametrize("value", TEXT_SAMPLES)
def test_a_text_pattern_takes_exactly_what_its_field_takes(value: str) -> None:
    """The schema's pattern for a trimmed field of at most 5 characters agrees with the model."""
    rule = schemas.Text(max_length=5)
    try:
        rule.clean(value)
        accepted = True
    except PydanticCustomError:
        accepted = False
    assert (re.search(schemas.text_pattern(5), value) is not None) == accepted


@pytest.mark.parametrize(
    "value",
    ["a@b.co", " A@B.CO\n", "a@b", "a b@c.de", "a@@b.co", "a\x00@b.co", "a" * 250 + "@b.co"],
)
def test_the_email_pattern_takes_exactly_what_registration_takes(app: Flask, value: str) -> None:
    """The register email's pattern agrees with accounts.normalize_email (and the model)."""
    try:
        schemas.Text().clean(value)
        normalize_email(value)
        accepted = True
    except (PydanticCustomError, DomainError):
        accepted = False
    assert (re.search(schemas.EMAIL_PATTERN, value) is not None) == accepted
