"""The web program under supervisord stops gracefully: an upload in hand when SIGTERM
arrives completes, new connections are refused meanwhile, and everything exits."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.support.client import multipart
from tests.support.deployment import Client, Deployment, supervisor
from tests.support.processes import processes_with
from tests.support.waiting import wait_for


@pytest.mark.slow
def test_web_finishes_requests_in_hand_on_sigterm(deployment: Deployment) -> None:
    """An upload still being received when SIGTERM arrives completes; new connections
    are refused meanwhile, and everything exits."""
    with supervisor(deployment, WORKERS="1") as sup:
        user = Client(deployment.base_url)
        user.register("late@deploy.test", "Late Org")
        status, token = user.json("POST", "/api/tokens", {"name": "late"})
        assert status == 201
        data = b"a line of a late upload\n" * 40_000
        body, content_type = multipart("late.txt", data)
        head = (
            "POST /api/files/upload HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{deployment.port}\r\n"
            f"Authorization: Bearer {token['token']}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", deployment.port), timeout=60) as conn:
            conn.sendall(head + body[: len(body) // 2])
            time.sleep(0.5)
            sup.terminate()
            sup.wait_for_lines(r"stopping: new connections refused, finishing 1 request")

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", deployment.port), timeout=2).close()
                except ConnectionRefusedError:
                    return True
                return False

            wait_for(refused, 10, "new connections to be refused")
            conn.sendall(body[len(body) // 2 :])
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
        status_line, _, rest = response.partition(b"\r\n")
        assert status_line.split()[1] == b"201", response[:500]
        file_id = json.loads(rest.partition(b"\r\n\r\n")[2])["file_id"]
        assert sup.process is not None and sup.process.wait(timeout=120) == 0
        assert not processes_with(sup.marker)

    assert deployment.file_statuses()[file_id] in {"pending", "ready"}
    stored = list(deployment.uploads.glob(f"*/{file_id}/*"))
    assert len(stored) == 1 and stored[0].read_bytes() == data
