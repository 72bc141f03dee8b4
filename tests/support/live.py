"""The app served by waitress on a free port in a thread, as in production."""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from waitress.server import create_server

from app.multipart import upload_body_limit


def body_limit(app: Flask) -> int:
    """The request body limit `manage.py serve` gives waitress, for this app."""
    with app.app_context():
        return upload_body_limit()


class LiveServer:
    """The app served by waitress, as in production, on a free port in a thread."""

    def __init__(self, app: Flask, *, coffer_server: bool = False) -> None:
        # coffer_server: the server `manage.py serve` builds (app/server.py), with its limits
        # and its way of sending streamed answers; else waitress's own.
        if coffer_server:
            from app.cli.serve import WAITRESS_SETTINGS
            from app.server import build_server

            self.server: Any = build_server(
                app, host="127.0.0.1", port=0, threads=4, **WAITRESS_SETTINGS
            )
        else:
            self.server = create_server(
                app,
                host="127.0.0.1",
                port=0,
                threads=4,
                max_request_body_size=body_limit(app),
                ident="coffer",
                clear_untrusted_proxy_headers=True,
            )
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)

    def start(self) -> None:
        """Serve until stop()."""
        self.thread.start()

    def stop(self) -> None:
        """Stop the worker threads, then close every connection from the server's own loop.

        Workers go first, so none is left to touch the trigger pipe once it is closed.
        """
        self.server.task_dispatcher.shutdown(timeout=10)

        def close_all() -> None:
            """Runs in the server's loop thread, the only one that may touch its sockets."""
            for channel in list(self.server._map.values()):
                if channel is not self.server and channel is not self.server.trigger:
                    channel.close()
            self.server.close()

        try:
            self.server.trigger.pull_trigger(close_all)
        except OSError:
            # The trigger pipe is already closed (its loop saw the pipe's end), so nothing
            # would run close_all: empty the loop's map from here instead; the loop finds it
            # empty within its select timeout and returns, and only then are the sockets closed.
            channels = list(self.server._map.values())
            for channel in channels:
                channel.del_channel()
            self.thread.join(timeout=10)
            for channel in channels:
                channel.close()
            self.server.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "waitress did not stop"


def send_cut_off(url: str, sent: bytes) -> bytes:
    """Send the start of a request on a new connection, then end the connection as a client
    that drops would; returns what the server sent before closing its end (b"" for nothing).

    Only the sending half is closed, so that the server's close can be waited for.
    """
    where = urlsplit(url)
    assert where.hostname is not None and where.port is not None
    with socket.create_connection((where.hostname, where.port), timeout=30) as conn:
        conn.sendall(sent)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received
