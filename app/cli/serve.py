"""`manage.py serve`: the API under waitress, with a graceful stop on SIGTERM."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ..libc import READ_BUFFER

log = logging.getLogger("coffer.server")

# How often the server loop looks for a stop request while idle.
POLL_SECONDS = 0.2
# What waitress reads from a socket at a time (its default is 8 KiB): each read is appended
# to the request's body buffer, a temp file past 512 KiB, at four system calls an append,
# so an 8 KiB read costs the main thread about as much as parsing an upload does. The
# largest read glibc serves from its arenas (app/libc.py): an 8 MiB PATCH arrives in
# 4.6-5.1 ms instead of 6.1-6.4 at 256 KiB (docs/PERFORMANCE.md).
RECV_BYTES = READ_BUFFER
# waitress's settings beside the host, port, threads and the limits of app/server.py
# (which come from the app's configuration); the bench's floor server takes them too, so
# it is measured under the same server.
WAITRESS_SETTINGS: dict[str, Any] = {
    "recv_bytes": RECV_BYTES,
    "clear_untrusted_proxy_headers": True,
    # select() cannot watch descriptors past 1024; poll() has no such limit.
    "asyncore_use_poll": True,
}


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on.  [default: $HOST]")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port.  [default: $PORT]")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Request threads.  [default: $WEB_THREADS]",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="Seconds the requests in hand get to finish after SIGTERM.",
)
@with_appcontext
def serve(host: str | None, port: int | None, threads: int | None, shutdown_timeout: float) -> None:
    """Serve the API with waitress; SIGTERM stops accepting and finishes requests in hand."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    run_server(
        app,
        host=host or config["HOST"],
        port=port or config["PORT"],
        threads=threads or config["WEB_THREADS"],
        shutdown_timeout=shutdown_timeout,
    )


def startup_objects_left_out_of_collections() -> None:
    """Keep what the process holds for its whole life (modules, the app, its tables and
    schemas) out of the garbage collector's full collections from now on.

    A request that makes many objects (a WebDAV listing of 10,000 files makes about a
    hundred thousand) sets off full collections, and each walked every object of the
    process: about a third of that listing's time (docs/PERFORMANCE.md). Objects made
    after this are collected as before; the garbage of the start is collected first.
    """
    gc.collect()
    gc.freeze()


def requests_in_hand(server: Any) -> int:
    """Connections of a waitress server with a request being received, run or sent."""
    return sum(
        1
        for channel in list(server.active_channels.values())
        if channel.request is not None or channel.requests or channel.total_outbufs_len
    )


def run_server(app: Flask, *, host: str, port: int, threads: int, shutdown_timeout: float) -> None:
    """Run waitress until SIGTERM or SIGINT, then drain gracefully.

    waitress itself dies on SIGTERM mid-request, so the loop is driven here: on a stop
    request the listening socket closes (new connections are refused) while the
    connections in hand are served to the end, for at most `shutdown_timeout` seconds.
    """
    # Imported here: only this command needs waitress.
    from waitress import wasyncore

    from ..server import build_server

    # Bodies refused by endpoint before they are read, connections capped per address,
    # headers with a deadline (app/server.py).
    server: Any = build_server(app, host=host, port=port, threads=threads, **WAITRESS_SETTINGS)
    startup_objects_left_out_of_collections()
    stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def turn() -> None:
        wasyncore.loop(
            timeout=POLL_SECONDS, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1
        )

    log.info(
        "Coffer serving on http://%s:%s with %d threads",
        server.effective_host,
        server.effective_port,
        threads,
    )
    try:
        while not stop.is_set():
            turn()
        log.info(
            "stopping: new connections refused, finishing %d request(s) in hand",
            requests_in_hand(server),
        )
        # The base class's close: the listening socket only, the wake-up trigger stays.
        wasyncore.dispatcher.close(server)
        deadline = time.monotonic() + shutdown_timeout
        while requests_in_hand(server) and time.monotonic() < deadline:
            turn()
        unfinished = requests_in_hand(server)
        if unfinished:
            log.warning("stopping with %d request(s) unfinished", unfinished)
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        wasyncore.close_all(server._map, ignore_all=True)
    log.info("stopped")
