"""Logging: plain lines in development, JSON lines in production; secrets kept out."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, g, has_request_context

# Secrets that must never reach a log line, whatever logged them (an exception's text
# may carry SQL parameters, a URL may carry a password). Each is replaced in place.
REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API token secrets.
    (re.compile(r"coffer_[A-Za-z0-9_-]{16,}"), "coffer_[redacted]"),
    # Webhook signing secrets.
    (re.compile(r"whsec_[A-Za-z0-9_-]{16,}"), "whsec_[redacted]"),
    # Share link secrets, in the path of /s/<secret> (the access log line names it).
    (re.compile(r"/s/[A-Za-z0-9_-]{16,}"), "/s/[redacted]"),
    # bcrypt password hashes.
    (re.compile(r"\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}"), "[redacted hash]"),
    # Authorization: Bearer <secret>.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    # Passwords inside URLs: scheme://user:password@host.
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE), r"\1[redacted]@"),
    # password=..., "secret_key": "...", csrf_token=... and the like.
    (
        re.compile(
            r"(?i)([\"']?\b(?:password|passwd|secret|secret_key|token|csrf_token|invite_code"
            r"|api_key)[\"']?\s*[:=]\s*)(?:\"[^\"]*\"|'[^']*'|[^\s,;&)}]+)"
        ),
        r"\1[redacted]",
    ),
)


def redact(text: str) -> str:
    """The text with every known kind of secret replaced."""
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Tags every record logged while a request is handled with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` when there is one; never drops a record."""
        if not hasattr(record, "request_id") and has_request_context():
            request_id = g.get("request_id")
            if request_id:
                record.request_id = request_id
        return True


class PlainFormatter(logging.Formatter):
    """Human-readable lines for development, with secrets redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one line (plus any traceback), redacted."""
        return redact(super().format(record))


class JSONFormatter(logging.Formatter):
    """One JSON object per line, with any `extra` fields the caller attached."""

    RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON, redacted."""
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in self.RESERVED and not key.startswith("_"):
                data[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, default=lambda value: redact(str(value)))


def configure(
    json_lines: bool, level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send Coffer's and RQ's logs to `stream` (stderr) in the chosen format.

    Returns the installed handler; calling again replaces it.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if json_lines else PlainFormatter())
    handler.addFilter(RequestIdFilter())
    handler._coffer = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_coffer", False):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def init_app(app: Flask) -> None:
    """Configure logging for the app's environment (tests keep pytest's capture)."""
    if app.testing:
        return
    configure(json_lines=app.config["APP_ENV"] == "production")
