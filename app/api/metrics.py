"""GET /metrics: Prometheus's scrape of this host (the numbers are app/metrics/'s)."""

from __future__ import annotations

from flask import Response

from .. import metrics
from .contract import PUBLIC, DocumentedBlueprint, error, operation, response

bp = DocumentedBlueprint("metrics", __name__)


@bp.get(
    metrics.PATH,
    openapi=operation(
        "metrics",
        "Prometheus metrics of every web thread and worker process of this host",
        "operations",
        {
            "200": {
                **response("The metrics, in Prometheus's text exposition format 0.0.4."),
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "404": error(
                "the client's address is not in METRICS_ALLOW and it sent no "
                "`Authorization: Bearer <METRICS_TOKEN>`: the answer of an unknown path.",
                "not_found",
            ),
        },
        security=PUBLIC,
        description="Allowed from the addresses in `METRICS_ALLOW` (default `127.0.0.1`; "
        "the client address after `TRUSTED_PROXIES`), or with `Authorization: Bearer "
        "<METRICS_TOKEN>` when that setting is set. Any other request for it, whatever "
        "its method, is answered `404` as an unknown path is.",
    ),
)
def scrape() -> Response:
    """Every process's numbers and the queue's, in Prometheus's text format."""
    return metrics.scrape()
