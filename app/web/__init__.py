"""The web app: server-rendered pages over the API's session, CSRF token and services."""

from __future__ import annotations

from . import previews as _previews  # noqa: F401  (its pages join the blueprint)
from . import requests as _requests  # noqa: F401  (its pages join the blueprint)
from .views import bp

__all__ = ["bp"]
