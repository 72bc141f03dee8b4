"""Mixed traffic from many clients over real HTTP: uploads, listings, details, downloads and
deletes, as a team's scripts would send them. The load test and `make bench` share it."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.support.client import bearer, multipart

KiB = 1024


@dataclass
class Answer:
    """One request's kind, status (0 for a connection error) and latency."""

    kind: str
    status: int
    seconds: float
    detail: bytes = b""


@dataclass
class Traffic:
    """Everything the clients sent and got back."""

    answers: list[Answer] = field(default_factory=list)
    # file id -> (token, bytes) of every upload that was accepted and not deleted.
    kept: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def server_errors(self) -> list[Answer]:
        """Answers of 5xx, and requests that got no answer at all."""
        return [a for a in self.answers if a.status >= 500 or a.status == 0]

    def latencies(self) -> list[float]:
        """Every request's latency, in seconds."""
        return [a.seconds for a in self.answers]


def call(
    port: int,
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    kind: str = "",
    timeout: float = 60,
) -> tuple[int, bytes]:
    """One request by bearer token on a connection of its own; (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = bearer(token)
        if kind:
            headers["Content-Type"] = kind
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def served(port: int) -> bool:
    """Whether the web server on this port answers /healthz."""
    try:
        return call(port, "GET", "/healthz", "")[0] == 200
    except OSError:
        return False


def text_file(size: int, seed: int) -> bytes:
    """Plain text of `size` bytes, different for every seed."""
    rng = random.Random(seed)
    line = " ".join(f"w{rng.randint(0, 9999)}" for _ in range(12)).encode() + b"\n"
    return (line * (size // len(line) + 1))[:size]


def mixed_traffic(
    port: int,
    tokens: list[str],
    clients: int,
    *,
    steps: int | None = None,
    seconds: float | None = None,
) -> Traffic:
    """`clients` threads of mixed requests, `steps` each or for `seconds`; all recorded."""
    traffic = Traffic()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds if seconds is not None else None

    def more(step: int) -> bool:
        if steps is not None and step >= steps:
            return False
        return deadline is None or time.monotonic() < deadline

    def timed(
        kind: str, method: str, path: str, token: str, body: bytes | None = None, ctype: str = ""
    ) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            status, answer = call(port, method, path, token, body, ctype)
        except OSError as exc:
            status, answer = 0, repr(exc).encode()
        with lock:
            traffic.answers.append(
                Answer(kind, status, time.perf_counter() - started, answer[:200])
            )
        return status, answer

    def client(number: int) -> None:
        rng = random.Random(number)
        token = tokens[number % len(tokens)]
        mine: list[str] = []
        step = 0
        while more(step):
            roll = rng.random()
            if roll < 0.35 or not mine:
                data = text_file(rng.randint(1, 32) * KiB, seed=100_000 * number + step)
                body, kind = multipart(f"c{number}-{step}.txt", data, "text/plain")
                status, answer = timed("upload", "POST", "/api/files/upload", token, body, kind)
                if status == 201:
                    file_id = json.loads(answer)["file_id"]
                    mine.append(file_id)
                    with lock:
                        traffic.kept[file_id] = (token, data)
            elif roll < 0.55:
                timed("list", "GET", f"/api/files?limit={rng.randint(1, 50)}", token)
            elif roll < 0.75:
                timed("details", "GET", f"/api/files/{rng.choice(mine)}", token)
            elif roll < 0.92:
                timed("download", "GET", f"/api/files/{rng.choice(mine)}/download", token)
            else:
                file_id = mine.pop(rng.randrange(len(mine)))
                status, _ = timed("delete", "DELETE", f"/api/files/{file_id}", token)
                if status == 204:
                    with lock:
                        traffic.kept.pop(file_id, None)
                        traffic.deleted.add(file_id)
            step += 1

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    return traffic


def unfinished(port: int, tokens: list[str]) -> int:
    """How many files of these tokens' organizations are pending or processing."""
    total = 0
    for token in tokens:
        for status in ("pending", "processing"):
            answer, body = call(port, "GET", f"/api/files?status={status}&limit=1", token)
            assert answer == 200, (answer, body[:500])
            total += int(json.loads(body)["total"])
    return total
