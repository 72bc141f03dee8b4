"""Code the tests share: processes, waiting, clients, databases, storage and deployments."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
"""The repository: where manage.py, deploy/ and migrations/ live."""
VENV_BIN = Path(sys.executable).parent
"""The virtualenv's bin folder: supervisord, supervisorctl, redis-server from the wheel."""
