"""Logging: plain lines in development, JSON lines in production; secrets kept out.

Records are queued by the thread that logs them and formatted, redacted and written by
one listener thread, so a request never waits on another's log line.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.handlers
import os
import queue
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, g, has_request_context

# Secrets that must never reach a log line, whatever logged them (an exception's text
# may carry SQL parameters, a URL may carry a password). Each is replaced in place.
# Every pattern runs in time linear in the text (tests/test_logging.py feeds each one
# 100,000-character adversarial strings): a pattern may only start a match where its
# first repeated class cannot also have matched one character earlier, or at a literal.
REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API token secrets.
    (re.compile(r"coffer_[A-Za-z0-9_-]{16,}"), "coffer_[redacted]"),
    # Webhook signing secrets.
    (re.compile(r"whsec_[A-Za-z0-9_-]{16,}"), "whsec_[redacted]"),
    # Share link secrets, in the path of /s/<secret> (the access log line names it).
    (re.compile(r"/s/[A-Za-z0-9_-]{16,}"), "/s/[redacted]"),
    # Invite and password reset codes, in the paths of their pages.
    (re.compile(r"/(join|reset|r)/[A-Za-z0-9_-]{16,}"), r"/\1/[redacted]"),
    # bcrypt password hashes.
    (re.compile(r"\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}"), "[redacted hash]"),
    # Authorization: Bearer <secret>.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    # Passwords inside URLs: scheme://user:password@host. The look-behind lets a match
    # start only at the beginning of a run of scheme characters: started at every one of
    # them, a long run without "://" costs time quadratic in its length.
    (
        re.compile(r"(?<![a-z0-9+.-])([a-z0-9+.-]++://[^:/@\s]*+:)[^@\s/]++@", re.IGNORECASE),
        r"\1[redacted]@",
    ),
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


# Records waiting for the listener; past this many (the stream is not keeping up) new
# ones are counted and dropped rather than held in memory or waited for.
QUEUE_SIZE = 10_000


class _Listener(logging.handlers.QueueListener):
    """The thread that writes queued records, through its owner's `write`."""

    def __init__(self, owner: QueueingHandler) -> None:
        super().__init__(owner.queue)
        self.owner = owner

    def handle(self, record: logging.LogRecord) -> None:
        """Write one record."""
        self.owner.write(record)

    def enqueue_sentinel(self) -> None:
        """Wait for room: the queue may be full when the listener is asked to stop."""
        self.queue.put(self._sentinel)  # type: ignore[attr-defined]

    @property
    def running(self) -> bool:
        """Whether the thread runs (it does not survive a fork)."""
        return self._thread is not None

    def forget_thread(self) -> None:
        """After a fork: the parent's thread is not this process's."""
        self._thread = None


class QueueingHandler(logging.handlers.QueueHandler):
    """Hands each record to a listener thread that formats, redacts and writes it.

    Only the filter (the request id, read from the request's context) and the message's
    arguments are rendered on the logging thread: the rest of the work is the listener's.
    """

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(queue.Queue(QUEUE_SIZE))
        self.target = target
        self.dropped = 0
        self.direct = False
        self.listener = _Listener(self)
        self.listener.start()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy with the message rendered now (its arguments may change once the call
        returns); the traceback stays for the listener to format."""
        prepared = copy.copy(record)
        prepared.msg = record.getMessage()
        prepared.args = None
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        """Queue the record, or count it as dropped when the queue is full."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record; in a forked child (RQ's work horse) write it directly."""
        if self.direct:
            self.target.handle(record)
        else:
            super().emit(record)

    def write(self, record: logging.LogRecord) -> None:
        """Format, redact and write one record (the listener thread's work)."""
        dropped, self.dropped = self.dropped, 0
        if dropped:
            self.target.handle(
                logging.makeLogRecord(
                    {
                        "name": __name__,
                        "levelno": logging.WARNING,
                        "levelname": "WARNING",
                        "msg": f"{dropped} log record(s) dropped: the log stream fell behind",
                    }
                )
            )
        self.target.handle(record)

    def flush(self) -> None:
        """Wait until every record queued so far is written."""
        if self.listener.running:
            self.queue.join()  # type: ignore[attr-defined]
        self.target.flush()

    def close(self) -> None:
        """Write what is queued, then stop the listener."""
        if self.listener.running:
            self.listener.stop()
        self.target.flush()
        super().close()

    def after_fork_in_child(self) -> None:
        """The listener thread does not survive a fork, and a work horse ends with
        os._exit (nothing queued would be written): write directly from here on."""
        self.listener.forget_thread()
        self.direct = True


_installed: list[QueueingHandler] = []


def _after_fork_in_child() -> None:
    for handler in _installed:
        handler.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure(
    json_lines: bool, level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send Coffer's and RQ's logs to `stream` (stderr) in the chosen format.

    Returns the installed handler (its flush() waits until what was logged is written);
    calling again replaces it.
    """
    target = logging.StreamHandler(stream or sys.stderr)
    target.setFormatter(JSONFormatter() if json_lines else PlainFormatter())
    handler = QueueingHandler(target)
    handler.addFilter(RequestIdFilter())
    handler._coffer = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_coffer", False):
            root.removeHandler(existing)
            existing.close()
    _installed[:] = [handler]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def init_app(app: Flask) -> None:
    """Configure logging for the app's environment (tests keep pytest's capture)."""
    if app.testing:
        return
    configure(json_lines=app.config["APP_ENV"] == "production")
