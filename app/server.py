"""waitress with the limits Coffer needs and waitress lacks: bodies refused by endpoint before
they are read, a cap on each client address's connections, and a deadline for headers; and
large pieces of a streamed answer (a zip) sent as they are, where waitress copies them."""

from __future__ import annotations

import json
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask
from waitress.adjustments import Adjustments
from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, crack_first_line, split_uri
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask
from waitress.utilities import RequestEntityTooLarge
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter, RequestRedirect

from .dav import MOUNT as DAV_MOUNT
from .libc import large_buffers_return_to_the_system
from .multipart import upload_body_limit
from .upload_endpoints import UPLOAD_ENDPOINTS

log = logging.getLogger("coffer.server")

# How often (seconds) the server looks for connections past a deadline; waitress's own
# default, 30 s, would let a header deadline of 10 s run to 40.
MAINTENANCE_SECONDS = 1
# File descriptors beside the connections: the database, Redis, storage, logs.
SPARE_DESCRIPTORS = 256
# A streamed answer's pieces from this size on are queued as they are (HeldPiece); smaller
# ones are copied into waitress's buffer as usual, where they join their neighbours.
HELD_PIECE_BYTES = 64 * 1024
# An answer's unsent bytes a connection holds before its request's thread waits for the
# client (waitress's default is 16 MiB): with pieces held in memory, this bounds them.
OUTBUF_HIGH_WATERMARK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The limits of one server, from the app's settings."""

    json_body: int
    upload_body: int
    connections: int
    per_address: int
    header_timeout: float
    idle_timeout: float

    @classmethod
    def of(cls, app: Flask) -> Limits:
        """The limits `app`'s configuration asks for."""
        config = app.config
        with app.app_context():
            upload = upload_body_limit()
        return cls(
            json_body=int(config["JSON_BODY_LIMIT_KB"]) * 1024,
            upload_body=upload,
            connections=int(config["CONNECTION_LIMIT"]),
            per_address=int(config["CONNECTIONS_PER_ADDRESS"]),
            header_timeout=float(config["REQUEST_HEADER_TIMEOUT_SECONDS"]),
            idle_timeout=float(config["CONNECTION_IDLE_TIMEOUT_SECONDS"]),
        )


class BodyTooLarge(RequestEntityTooLarge):
    """waitress's 413 for a body over the non-upload limit, answered in Coffer's JSON shape
    (waitress's own is plain text, which the contract allows for uploads only)."""

    # waitress's stub says the body is a str; waitress itself returns (and writes) bytes.
    def to_response(  # type: ignore[override]
        self, ident: str | None = None
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Status, headers and the JSON error body."""
        body = json.dumps({"error": self.body, "code": "payload_too_large"}).encode()
        return (
            f"{self.code} {self.reason}",
            [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")],
            body,
        )


class RequestAdjustments:
    """The server's Adjustments with one request's body limits in place of the server's.

    The parser reads `max_request_body_size` and `inbuf_overflow` from its `adj` as it
    goes; replacing the parser's `adj` is the one way to set them per request.
    """

    def __init__(self, adj: Adjustments, max_body: int, in_memory: int) -> None:
        self._adj = adj
        self.max_request_body_size = max_body
        self.inbuf_overflow = in_memory

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adj, name)


class LimitedParser(HTTPRequestParser):
    """waitress's request parser, with the body limit chosen by method and path.

    waitress has one `max_request_body_size` for every request, so a POST to
    /api/auth/login could send as much as an upload, spooled to a temp file before the app
    could refuse it. Here the limit is chosen once the request line is known, before any
    body byte is read: the upload endpoints get the upload limit, everything else the
    JSON limit (and keeps its body in memory, so a refused body never touches the disk).
    """

    channel: LimitedChannel
    # Whether the request is to an upload endpoint (known once its headers are parsed).
    upload = False

    def __init__(self, adj: Adjustments, channel: LimitedChannel) -> None:
        super().__init__(adj)
        self.channel = channel
        # When the request's first bytes arrived: its headers have a deadline from here.
        self.started = time.time()

    def parse_header(self, header_plus: bytes) -> None:
        """Choose the body limit from the request line, then parse as waitress does."""
        server: LimitedServer = self.channel.server
        limits = server.limits
        first_line = header_plus.partition(b"\r\n")[0].rstrip()
        # waitress's stubs call these str; they take and return bytes, bar the path.
        command, uri, _version = crack_first_line(first_line)  # type: ignore[arg-type]
        path = str(split_uri(uri)[2]) if uri else ""
        self.upload = server.takes_upload(command.decode("latin-1"), path)
        if self.upload:
            chosen = RequestAdjustments(server.adj, limits.upload_body, server.adj.inbuf_overflow)
        else:
            # A chunked body passes the limit by up to one read before the parser looks,
            # so the memory buffer has a read's worth of room past it.
            in_memory = limits.json_body + int(server.adj.recv_bytes) + 1
            chosen = RequestAdjustments(server.adj, limits.json_body, in_memory)
        self.adj = cast(Adjustments, chosen)
        super().parse_header(header_plus)

    def received(self, data: bytes) -> int:
        """waitress's parsing, with its 413 for a non-upload body made a JSON one."""
        consumed: int = super().received(data)
        error = self.error
        if isinstance(error, RequestEntityTooLarge) and not isinstance(error, BodyTooLarge):
            # An upload over its limit keeps waitress's plain text (the contract allows it).
            if not self.upload:
                kib = self.adj.max_request_body_size // 1024
                self.error = BodyTooLarge(f"the request body is over the {kib} KiB limit")
        return consumed


class HeldPiece(ReadOnlyFileBasedBuffer):
    """One piece of a streamed answer in the connection's queue as it was written, sent as
    views of it.

    waitress copies every piece an application yields into its output buffer, a temporary
    file past 1 MiB that is then read back, and a chunked answer's piece once more to frame
    it: at 1 MiB pieces, 0.5-1 s per GiB, longer than a file's whole download (which waitress
    sends from the file). A file-based buffer is the one kind waitress queues as it is.
    """

    def __init__(self, data: bytes) -> None:  # no file: the base's state is set here
        self.view = memoryview(data)
        self.sent = 0
        self.remain = len(data)

    def get(self, numbytes: int = -1, skip: bool = False) -> Any:
        """The next unsent bytes (at most `numbytes`), a view: no copy."""
        end = len(self.view) if numbytes < 0 else self.sent + numbytes
        piece = self.view[self.sent : end]
        if skip:
            self.skip(len(piece))
        return piece

    def skip(self, numbytes: int, allow_prune: int = 0) -> None:
        """`numbytes` more were sent."""
        self.sent += numbytes
        self.remain -= numbytes

    def prune(self) -> None:
        """Nothing to drop before the whole piece is sent."""

    def close(self) -> None:
        """Let the piece go."""
        self.view = memoryview(b"")
        self.remain = 0


class StreamingTask(WSGITask):
    """waitress's WSGI task, with large pieces of an answer queued as they are (HeldPiece)."""

    def write(self, data: bytes) -> None:
        """Send `data`: a large piece of bytes is queued as it is (framed apart from it when
        the answer is chunked); anything else as waitress sends it."""
        held = (
            type(data) is bytes
            and len(data) >= HELD_PIECE_BYTES
            and self.has_body
            and (self.chunked_response or self.content_length is None)
        )
        if not held:
            super().write(data)
            return
        if not self.wrote_header:
            super().write(b"")  # the status line and headers, as waitress writes them
        # waitress's stub says bytes; write_soon takes a file-based buffer too (its
        # wsgi.file_wrapper path).
        channel: Any = self.channel
        if self.chunked_response:
            channel.write_soon(b"%X\r\n" % len(data))
            channel.write_soon(HeldPiece(data))
            channel.write_soon(b"\r\n")
        else:  # no length and not chunked (HTTP/1.0): the connection's end ends the body
            channel.write_soon(HeldPiece(data))


class LimitedChannel(HTTPChannel):
    """A connection counted against its client address's cap."""

    server: LimitedServer
    task_class = StreamingTask
    counted = False
    # Requests begun on this connection: before the first, it is a fresh connection.
    begun = 0

    def __init__(
        self, server: LimitedServer, sock: Any, addr: Any, adj: Adjustments, map: Any = None
    ):
        self.client_address = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        super().__init__(server, sock, addr, adj, map)
        server.per_address[self.client_address] += 1
        self.counted = True

    def parser_class(self, adj: Adjustments) -> LimitedParser:  # type: ignore[override]
        """A parser that knows its channel (for the server's limits)."""
        self.begun += 1
        return LimitedParser(adj, self)

    def del_channel(self, map: Any = None) -> None:
        """Give the address's place back, once."""
        super().del_channel(map)
        if self.counted:
            self.counted = False
            count = self.server.per_address
            count[self.client_address] -= 1
            if count[self.client_address] <= 0:
                del count[self.client_address]


class LimitedServer(TcpWSGIServer):
    """waitress's TCP server with a per-address connection cap and a header deadline.

    waitress only has a global `connection_limit`: one client holding that many idle
    connections stops the server accepting anyone's. Here each address may hold at most
    `per_address`; a connection past it is closed as soon as it is accepted.
    """

    channel_class = LimitedChannel

    def __init__(self, application: Any, *args: Any, limits: Limits, routes: MapAdapter, **kw: Any):
        self.limits = limits
        self.routes = routes
        self.per_address: Counter[str] = Counter()
        # Addresses whose refusal was logged, so a flood logs one line per address.
        self.refused: set[str] = set()
        super().__init__(application, *args, **kw)

    def takes_upload(self, method: str, path: str) -> bool:
        """Whether METHOD PATH is an upload endpoint (its body may be a whole file): a
        WebDAV PUT is one."""
        if method == "PUT" and (path == DAV_MOUNT or path.startswith(DAV_MOUNT + "/")):
            return True
        try:
            endpoint, _args = self.routes.match(path, method)
        except (HTTPException, RequestRedirect):
            return False
        return endpoint in UPLOAD_ENDPOINTS

    def handle_accept(self) -> None:
        """Accept a connection, or close it when its address holds its share already."""
        try:
            accepted = self.accept()
        except OSError:
            return
        if accepted is None:
            return
        conn, addr = accepted
        address = str(addr[0])
        cap = self.limits.per_address
        if cap and self.per_address[address] >= cap:
            conn.close()
            if address not in self.refused:
                self.refused.add(address)
                log.warning(
                    "%s holds %d connections, the most one address may: closing its new ones",
                    address,
                    cap,
                )
            return
        self.refused.discard(address)
        try:
            self.set_socket_options(conn)
        except OSError:
            conn.close()
            return
        self.channel_class(
            self,
            conn,
            self.fix_addr(addr),
            self.adj,
            map=self._map,  # type: ignore[attr-defined]
        )

    def maintenance(self, now: float) -> None:
        """Close idle connections (waitress's channel_timeout) and those still sending
        their headers past the deadline, or that sent nothing since they were opened."""
        super().maintenance(now)  # type: ignore[arg-type]
        deadline = now - self.limits.header_timeout
        channels = cast(dict[int, LimitedChannel], self.active_channels)
        for channel in list(channels.values()):
            if channel.requests or channel.will_close:
                continue
            request = cast(LimitedParser | None, channel.request)
            if request is None:
                # Nothing of a request yet: a fresh connection has until the deadline
                # too; one that was answered already is idle (channel_timeout).
                started = None if channel.begun else channel.creation_time
            elif not request.headers_finished:
                started = request.started
            else:
                started = None
            if started is not None and started < deadline:
                channel.will_close = True


def raise_descriptor_limit(connections: int) -> None:
    """Let the process hold `connections` sockets and its own files: the soft limit on
    open files is often 1024, which would cap connections before CONNECTION_LIMIT did."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < wanted:
            log.warning(
                "open files are limited to %d: fewer than CONNECTION_LIMIT=%d connections "
                "may be held",
                new,
                connections,
            )


def build_server(
    app: Flask, *, host: str, port: int, threads: int, **settings: Any
) -> LimitedServer:
    """Coffer's waitress server for `app`, with the limits of its configuration."""
    limits = Limits.of(app)
    raise_descriptor_limit(limits.connections)
    large_buffers_return_to_the_system()
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        # The largest body of any request; each request gets its own limit (LimitedParser).
        max_request_body_size=limits.upload_body,
        connection_limit=limits.connections,
        channel_timeout=limits.idle_timeout,
        cleanup_interval=MAINTENANCE_SECONDS,
        outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
        ident="coffer",
        # select() cannot watch descriptors past 1024; poll() has no such limit.
        **{"asyncore_use_poll": True, **settings},
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    # waitress's create_server builds its own classes only: this is the step it takes for
    # one TCP address, with LimitedServer. (An address with several resolutions, such as
    # `localhost`, is served on its first.)
    return LimitedServer(
        app,
        {},
        dispatcher=dispatcher,
        adj=adj,
        sockinfo=adj.listen[0],
        limits=limits,
        routes=app.url_map.bind("coffer"),
    )
