"""A webhook receiver on 127.0.0.1: a real HTTP server in a thread that records every
request and answers with the statuses it is told to, in turn."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records requests; answers each with the next of `statuses` (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [204])
    location: str | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int:
        """The status of the next answer."""
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@contextmanager
def receiver(
    statuses: list[int] | None = None,
    location: str | None = None,
    delay: float = 0,
    tls: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
) -> Iterator[Receiver]:
    """A running receiver on 127.0.0.1: `location` is sent with 3xx answers, each answer
    waits `delay` seconds, `tls` serves HTTPS, and `host` is the name its URL uses."""
    state = Receiver(statuses=list(statuses or [204]), location=location)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
                status = state.answer()
            time.sleep(delay)
            self.send_response(status)
            if state.location and 300 <= status < 400:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads what was received."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    state.url = f"{scheme}://{host}:{server.server_address[1]}/hooks/coffer"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
