"""A plain keep-alive HTTP client for the bench: one connection per thread, loopback only."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, BinaryIO, TypeVar

from tests.support.client import multipart_frame

LOOPBACK = "127.0.0.1"
SESSION_COOKIE = "coffer_session"
PASSWORD = "bench password 1234"
MiB = 1024 * 1024

T = TypeVar("T")


class BenchError(RuntimeError):
    """Something the bench needs did not happen; the message says what."""


@dataclass
class Response:
    """A read response."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Client:
    """One keep-alive connection to 127.0.0.1:port with headers sent on every request."""

    def __init__(self, port: int, headers: dict[str, str] | None = None, timeout: float = 120.0):
        self.port = port
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._conn: http.client.HTTPConnection | None = None

    def clone(self) -> Client:
        """A client with the same headers (so the same session) on its own connection."""
        return Client(self.port, self.headers, self.timeout)

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request and read the whole response."""
        merged = {**self.headers, **(headers or {})}
        # A keep-alive connection the server closed while idle fails on first use; a
        # body that can be sent again is retried once on a new connection.
        attempts = 2 if body is None or isinstance(body, bytes) else 1
        for attempt in range(attempts):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=merged)
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt + 1 == attempts:
                    raise
                continue
            if response.will_close:
                self.close()
            return Response(response.status, response.headers, data)
        raise AssertionError("unreachable")

    def drain(
        self, path: str, chunk: int = MiB, sink: BinaryIO | None = None
    ) -> tuple[int, int, bytes]:
        """GET `path` and read its body `chunk` bytes at a time, keeping none of it in memory
        (a body of gigabytes never sits in the bench's memory; written to `sink` when given,
        as a client saving the file does): the status, the body's length and its last 64
        bytes."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout)
        buffer = bytearray(chunk)
        total, tail = 0, b""
        try:
            self._conn.request("GET", path, headers=self.headers)
            response = self._conn.getresponse()
            while count := response.readinto(buffer):
                if sink is not None:
                    sink.write(memoryview(buffer)[:count])
                total += count
                tail = (tail + bytes(buffer[max(0, count - 64) : count]))[-64:]
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, total, tail

    def json(self, method: str, path: str, payload: Any = None, expect: int = 200) -> Any:
        """A JSON request whose answer must have status `expect`; returns the parsed body."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = self.request(method, path, body, headers)
        if response.status != expect:
            raise BenchError(
                f"{method} {path} answered {response.status}, not {expect}: {response.body[:300]!r}"
            )
        return response.json() if response.body else None


def register(port: int, name: str) -> tuple[Client, dict[str, Any]]:
    """Register a new user in a new organization; a client logged in by session cookie."""
    client = Client(port)
    suffix = uuid.uuid4().hex[:8]
    payload = {
        "email": f"{name}-{suffix}@bench.test",
        "password": PASSWORD,
        "organization_name": f"bench {name} {suffix}",
    }
    body = json.dumps(payload).encode()
    response = client.request(
        "POST", "/api/auth/register", body, {"Content-Type": "application/json"}
    )
    if response.status != 201:
        raise BenchError(f"register answered {response.status}: {response.body[:300]!r}")
    cookie = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookie.load(header)
    if SESSION_COOKIE not in cookie:
        raise BenchError("register set no session cookie")
    identity = response.json()
    client.headers["Cookie"] = f"{SESSION_COOKIE}={cookie[SESSION_COOKIE].value}"
    # Cookie-authenticated writes need the session's CSRF token.
    client.headers["X-CSRF-Token"] = identity["csrf_token"]
    return client, identity


def boundary() -> str:
    """A fresh multipart boundary, marked as the bench's."""
    return f"coffer-bench-{uuid.uuid4().hex}"


def small_upload(
    client: Client,
    filename: str,
    data: bytes,
    fields: dict[str, str] | None = None,
    content_type: str = "text/plain",
) -> dict[str, Any]:
    """POST one small file to Coffer, with these form fields before it (`folder_id`...);
    returns the 201 body."""
    separator = boundary()
    header, head, tail = multipart_frame(filename, content_type, separator)
    before = b"".join(
        f"--{separator}\r\nContent-Disposition: form-data; "
        f'name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    )
    response = client.request(
        "POST", "/api/files/upload", before + head + data + tail, {"Content-Type": header}
    )
    if response.status != 201:
        raise BenchError(f"upload answered {response.status}: {response.body[:300]!r}")
    return response.json()


def large_upload(
    client: Client, path: str, filename: str, size: int, block: bytes
) -> tuple[Response, int]:
    """POST `size` bytes (repeats of `block`) as a one-file multipart body, streamed.

    Returns the response and the request body's length.
    """
    content_type, head, tail = multipart_frame(filename, boundary=boundary())
    length = len(head) + size + len(tail)

    def body() -> Iterator[bytes]:
        yield head
        view = memoryview(block)
        left = size
        while left > 0:
            part = view[: min(left, len(view))]
            yield part  # type: ignore[misc]
            left -= len(part)
        yield tail

    response = client.request(
        "POST",
        path,
        body(),
        {"Content-Type": content_type, "Content-Length": str(length)},
    )
    return response, length


def run_threads(count: int, target: Callable[[int], T], timeout: float) -> list[T]:
    """Run target(0..count-1) on `count` threads started together; their results in order.

    Raises the first thread's error, or BenchError when a thread outlives `timeout`.
    """
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = target(index)
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise BenchError(f"client threads still running after {timeout:.0f} s")
    if errors:
        raise errors[0]
    return results


def delete_for_good(client: Client, kind: str, item_id: str) -> None:
    """DELETE a file or folder (`kind` "files" or "folders"), then delete it from the trash,
    so its bytes and rows go at once as before the trash existed."""
    client.json("DELETE", f"/api/{kind}/{item_id}", expect=204)
    client.json("DELETE", f"/api/trash/{item_id}", expect=204)
