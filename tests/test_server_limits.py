"""The web server's own limits, against `manage.py serve` as deployed: one request cannot
stall the others, one client address cannot hold every connection, a connection that
dribbles its headers is closed, and bodies are refused by endpoint before they are read."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.deployment import Client, Deployment
from tests.support.processes import ManagedProcess, managed
from tests.support.waiting import wait_for

MiB = 1024 * 1024
# Another client of the same machine: the whole of 127/8 is loopback.
OTHER_ADDRESS = "127.0.0.2"


@contextmanager
def web(deployment: Deployment, tmp_path: Path, **env: str) -> Iterator[ManagedProcess]:
    """`manage.py serve` on the deployment's port with its production settings (and
    `env`), answering /healthz; stopped afterwards."""
    with managed(["serve"], {**deployment.env, **env}, tmp_path / "web.log") as process:
        wait_for(lambda: answers(deployment.port), 60, f"the server to answer:\n{process.output}")
        yield process


def answers(port: int) -> bool:
    """Whether GET /healthz answers 200 on a fresh connection."""
    try:
        return exchange(port, b"GET /healthz HTTP/1.1\r\nHost: coffer\r\n\r\n")[0] == 200
    except OSError:
        return False


def read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length from a connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {received!r}")
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def exchange(
    port: int, request: bytes, source: str | None = None, timeout: float = 5
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a new connection (from `source`, if given); read the answer."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    ) as conn:
        conn.sendall(request)
        return read_response(conn)


def closed_by_server(conn: socket.socket) -> bool:
    """Whether the server has closed this connection (without waiting)."""
    conn.setblocking(False)
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        conn.setblocking(True)


@pytest.mark.slow
def test_a_long_path_does_not_hold_up_other_requests(
    deployment: Deployment, tmp_path: Path
) -> None:
    """While a GET of / followed by 100,000 `a`s is in flight (its access line is redacted
    and written), /healthz answers in under 100 ms; the long one gets its 404."""
    with web(deployment, tmp_path) as process:
        long_path = "/" + "a" * 100_000
        with (
            socket.create_connection(("127.0.0.1", deployment.port), timeout=30) as probe,
            socket.create_connection(("127.0.0.1", deployment.port), timeout=90) as long_one,
        ):
            probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: coffer\r\n\r\n")
            assert read_response(probe)[0] == 200
            long_one.sendall(f"GET {long_path} HTTP/1.1\r\nHost: coffer\r\n\r\n".encode())
            timings = []
            for _ in range(10):
                probe.settimeout(5)
                started = time.monotonic()
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: coffer\r\n\r\n")
                status = read_response(probe)[0]
                timings.append(time.monotonic() - started)
                assert status == 200
                time.sleep(0.02)
            assert max(timings) < 0.1, timings
            status, _, body = read_response(long_one)
            assert status == 404 and json.loads(body)["code"] == "not_found"

        def logged() -> bool:
            return '"status": 404' in process.output() and "aaaaaaaaaa" in process.output()

        wait_for(logged, 10, "the long request's access line")


@pytest.mark.slow
def test_idle_connections_from_one_address_leave_other_clients_served(
    deployment: Deployment, tmp_path: Path
) -> None:
    """200 idle connections from 127.0.0.1: the server keeps at most its per-address share
    of them and closes the rest, and a client at another address is answered at once."""
    with web(deployment, tmp_path, CONNECTIONS_PER_ADDRESS="50"):
        idle = [
            socket.create_connection(("127.0.0.1", deployment.port), timeout=10) for _ in range(200)
        ]
        try:
            status, _, body = exchange(
                deployment.port, b"GET /healthz HTTP/1.1\r\nHost: c\r\n\r\n", OTHER_ADDRESS
            )
            assert (status, json.loads(body)["status"]) == (200, "ok")

            def refused_past_the_cap() -> bool:
                return sum(closed_by_server(conn) for conn in idle) >= 150

            wait_for(refused_past_the_cap, 10, "the connections past the cap to be closed")
            kept = [conn for conn in idle if not closed_by_server(conn)]
            assert len(kept) == 50
            # The ones kept are served as usual.
            kept[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: coffer\r\n\r\n")
            assert read_response(kept[0])[0] == 200
        finally:
            for conn in idle:
                conn.close()


@pytest.mark.slow
def test_a_connection_dribbling_its_headers_is_closed(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A client that sends a header byte every 200 ms (slowloris) is cut off once the
    header deadline passes, though it is never idle; a prompt client is still answered."""
    with web(deployment, tmp_path, REQUEST_HEADER_TIMEOUT_SECONDS="2"):
        with socket.create_connection(("127.0.0.1", deployment.port), timeout=10) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: coffer\r\n")
            started = time.monotonic()
            cut_off = False
            while time.monotonic() - started < 20:
                try:
                    slow.sendall(b"X")
                except (BrokenPipeError, ConnectionResetError):
                    cut_off = True
                    break
                if closed_by_server(slow):
                    cut_off = True
                    break
                time.sleep(0.2)
            assert cut_off, "the server kept a connection whose headers never ended"
            assert time.monotonic() - started >= 1.5
        assert answers(deployment.port)


def temp_files_of(pid: int, folder: Path) -> list[str]:
    """The files under `folder` a process has open (deleted ones included)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def send_watching(
    conn: socket.socket, pieces: Iterator[bytes], pid: int, folder: Path
) -> list[str]:
    """Send `pieces` until the server answers or stops reading, looking at the server's
    open files after each; returns every temp file seen."""
    seen: set[str] = set()
    conn.settimeout(5)
    for piece in pieces:
        seen.update(temp_files_of(pid, folder))
        try:
            conn.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        if answered(conn):
            break
    seen.update(temp_files_of(pid, folder))
    return sorted(seen)


def answered(conn: socket.socket) -> bool:
    """Whether the server has sent something (or closed) on this connection."""
    conn.setblocking(False)
    try:
        conn.recv(1, socket.MSG_PEEK)
        return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        conn.settimeout(5)


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A chunked transfer encoding of `total` bytes of JSON-ish text, chunk by chunk."""
    block = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


def fixed(total: int, size: int = MiB) -> Iterator[bytes]:
    """`total` bytes in pieces of `size`."""
    block = b"x" * size
    for _ in range(total // size):
        yield block


@pytest.mark.slow
def test_oversized_bodies_to_json_endpoints_are_refused_before_they_are_read(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A 90 MB body declared to /api/auth/login, and a chunked one that keeps going, get
    a JSON 413 and the server never opens a temp file for them; uploads still take
    bodies past the JSON limit, multipart and tus alike."""
    spool = tmp_path / "spool"
    spool.mkdir()
    with web(deployment, tmp_path, TMPDIR=str(spool)) as process:
        head = "POST /api/auth/login HTTP/1.1\r\nHost: coffer\r\nContent-Type: application/json\r\n"
        for framing, pieces in (
            (f"Content-Length: {90 * MiB}\r\n", fixed(90 * MiB)),
            ("Transfer-Encoding: chunked\r\n", chunked(90 * MiB)),
        ):
            with socket.create_connection(("127.0.0.1", deployment.port), timeout=10) as conn:
                conn.sendall(f"{head}{framing}\r\n".encode())
                seen = send_watching(conn, pieces, process.pid, spool)
                conn.settimeout(10)
                status, headers, body = read_response(conn)
            assert not seen, (framing, seen)
            assert status == 413, (framing, body[:300])
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["code"] == "payload_too_large"
        assert not list(spool.iterdir())

        user = Client(deployment.base_url)
        user.register("big@deploy.test", "Big Org")
        data = b"a line of a file larger than any JSON body\n" * (2 * MiB // 43)
        uploaded = user.upload("big.txt", data)
        assert uploaded["size"] == len(data)
        tus = {"Tus-Resumable": "1.0.0"}
        name = base64.b64encode(b"resumable.txt").decode()
        status, headers, _ = user.request(
            "POST",
            "/api/uploads",
            headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
        )
        assert status == 201
        location = headers["Location"]
        status, headers, body = user.request(
            "PATCH",
            location if location.startswith("/") else "/" + location.split("/", 3)[3],
            data,
            {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert status == 204, body[:300]
        assert headers["Upload-Offset"] == str(len(data))
