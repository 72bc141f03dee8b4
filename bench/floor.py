"""The floor Coffer is measured against, served by waitress with `manage.py serve`'s settings.

`POST /upload` only streams the request body to a file (no parsing, hashing or fsync);
`GET /me` is a bare Flask route answering a constant JSON object of the size of
`/api/auth/me`'s. Run it as `python -m bench.floor --port N --directory DIR ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from waitress import serve

from app.cli.serve import WAITRESS_SETTINGS

CHUNK = 1024 * 1024
LOOPBACK = "127.0.0.1"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def stream_body(
    environ: dict[str, Any], start_response: StartResponse, directory: Path
) -> list[bytes]:
    """Copy the request body to a new file in `directory` and answer 201 with its size."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    fd, _name = tempfile.mkstemp(dir=directory, prefix="floor-", suffix=".part")
    written = 0
    with os.fdopen(fd, "wb") as out:
        while written < length:
            chunk = stream.read(min(CHUNK, length - written))
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
    body = json.dumps({"size": written}).encode()
    start_response(
        "201 Created",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def make_app(directory: Path) -> WSGIApp:
    """The floor's WSGI app: the streaming upload endpoint beside a bare Flask app."""
    flask_app = Flask("coffer_bench_floor")

    @flask_app.get("/me")
    def me() -> dict[str, Any]:
        return {
            "user_id": 1,
            "email": "floor@bench.test",
            "organization_id": 1,
            "organization_name": "floor",
            "role": "admin",
        }

    @flask_app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/upload" and environ.get("REQUEST_METHOD") == "POST":
            return stream_body(environ, start_response, directory)
        return flask_app.wsgi_app(environ, start_response)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the floor on 127.0.0.1 until terminated."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-request-body-size", type=int, required=True)
    parser.add_argument("--directory", type=Path, required=True)
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    # The same arguments `manage.py serve` hands waitress, bar the app, the ident and the
    # per-request and per-address limits of app/server.py (none of which a floor upload meets).
    serve(
        make_app(args.directory),
        host=LOOPBACK,
        port=args.port,
        threads=args.threads,
        max_request_body_size=args.max_request_body_size,
        ident="coffer-floor",
        **WAITRESS_SETTINGS,
    )


if __name__ == "__main__":
    main()
