"""Reading request input: JSON bodies and query strings through their models, integer URLs."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel
from werkzeug.routing import IntegerConverter, Map

from ..errors import APIError
from ..models import MAX_ID
from ..schemas import validated

Model = TypeVar("Model", bound=BaseModel)


def parsed_json() -> Any:
    """The body parsed as JSON, or None when it is not JSON; only a body over the limit raises."""
    if not request.is_json:
        return None
    try:
        return request.get_json(silent=True)
    except RecursionError:
        # Nesting deeper than the parser's recursion limit is not a JSON body Coffer takes.
        return None


def parse_body(model: type[Model]) -> Model:
    """The JSON body read by its model; 400 invalid_json when it is not JSON at all.

    A body that is JSON but not what the model takes raises InputRejected, which
    app/errors.py answers.
    """
    if not request.is_json:
        raise APIError(
            400, "invalid_json", "the body must be JSON (Content-Type: application/json)"
        )
    data = parsed_json()
    if data is None:
        raise APIError(400, "invalid_json", "the body is not valid JSON")
    return validated(model, data)


def parse_optional_body(model: type[Model]) -> Model:
    """The JSON body read by its model, as parse_body; no body at all takes every default,
    as `{}` does."""
    if not request.content_length and not request.is_json:
        return model()
    return parse_body(model)


def parse_query(model: type[Model]) -> Model:
    """The query string read by its model; a parameter sent empty takes its default."""
    return validated(model, {k: v for k, v in request.args.items() if v != ""})


class AsciiIntegerConverter(IntegerConverter):
    """werkzeug's `int` URL converter held to ASCII digits (its `\\d+` takes "٣" too)."""

    regex = r"[0-9]+"


class IdConverter(AsciiIntegerConverter):
    """A database id in a URL (`<id:name>`): 1 to MAX_ID in ASCII digits; any other number
    matches no route, so an id that cannot exist is a 404 before the database sees it."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)
