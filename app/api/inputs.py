"""Parsing of request input into plain values, with a 400 that names the field."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from ..errors import APIError

# Plain ASCII digits; int() alone would also take "1_0", " 2", "+3" and digits of other
# scripts such as "٣". A leading minus passes here and is then answered as out of range.
DECIMAL_RE = re.compile(r"-?[0-9]+")


def parsed_json() -> Any:
    """The body parsed as JSON, or None when it is not JSON; only a body over the limit raises."""
    if not request.is_json:
        return None
    try:
        return request.get_json(silent=True)
    except RecursionError:
        # Nesting deeper than the parser's recursion limit is not a JSON body Coffer takes.
        return None


def json_body() -> dict[str, Any]:
    """The request's JSON object, or 400 when the body is not a JSON object."""
    if not request.is_json:
        raise APIError(
            400, "invalid_json", "the body must be JSON (Content-Type: application/json)"
        )
    data = parsed_json()
    if data is None:
        raise APIError(400, "invalid_json", "the body is not valid JSON")
    if not isinstance(data, dict):
        raise APIError(400, "invalid_json", "the body must be a JSON object")
    return data


def string_field(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    max_length: int = 255,
    strip: bool = True,
    allow_control: bool = False,
) -> str | None:
    """A string field, stripped of surrounding space; 400 naming it when it is wrong.

    Control characters are refused unless `allow_control` (passwords take any text).
    """
    value = body.get(name)
    if value is None:
        if required:
            raise APIError(400, "missing_field", f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise APIError(400, "invalid_field", f"{name} must be a string", field=name)
    if not is_encodable(value):
        # JSON may escape lone surrogates, which no UTF-8 text (nor database) can hold.
        raise APIError(400, "invalid_field", f"{name} must be valid Unicode text", field=name)
    if strip:
        value = value.strip()
    if not allow_control and has_control_characters(value):
        raise APIError(
            400, "invalid_field", f"{name} must not contain control characters", field=name
        )
    if required and not value:
        raise APIError(400, "missing_field", f"{name} is required", field=name)
    if len(value) > max_length:
        raise APIError(
            400, "invalid_field", f"{name} must be at most {max_length} characters", field=name
        )
    return value


def is_encodable(value: str) -> bool:
    """Whether the string is valid Unicode text, i.e. encodes as UTF-8."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def has_control_characters(value: str) -> bool:
    """Whether the string holds a control character (NUL, tab, newline, DEL, C1, ...)."""
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def int_arg(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """An integer query parameter within bounds, or 400 naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = decimal_value(raw)
    if value is None:
        raise APIError(400, "invalid_parameter", f"{name} must be a whole number", field=name)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise APIError(400, "invalid_parameter", f"{name} must be {bound}", field=name)
    return value


def decimal_value(raw: str) -> int | None:
    """The value of a plain ASCII decimal (a leading "-" allowed), or None for anything else."""
    if not DECIMAL_RE.fullmatch(raw):
        return None
    try:
        return int(raw)
    except ValueError:  # more digits than int() converts (thousands)
        return None


class AsciiIntegerConverter(IntegerConverter):
    """werkzeug's `int` URL converter held to ASCII digits (its `\\d+` takes "٣" too)."""

    regex = r"[0-9]+"
