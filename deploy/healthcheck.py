"""Container health check: exit 0 when GET /healthz on $PORT answers {"status": "ok"}."""

from __future__ import annotations

import json
import os
import sys
import urllib.request

TIMEOUT_SECONDS = 4


def main() -> int:
    """Ask the local web process for /healthz; 0 when healthy, 1 with a reason otherwise."""
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            healthy = response.status == 200 and json.load(response).get("status") == "ok"
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"unhealthy: {url} did not answer {{'status': 'ok'}}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
