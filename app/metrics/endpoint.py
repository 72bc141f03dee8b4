"""GET /metrics's rules (who may read it, what it answers; the route is app/api/metrics.py)
and how an app sets its metrics up."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from werkzeug.exceptions import NotFound

from .collectors import FilesCollector, QueueCollector
from .processes import metrics_directory, setup_process

PATH = "/metrics"


def allowed() -> bool:
    """METRICS_TOKEN as a bearer token (compared in constant time), or a client address
    in METRICS_ALLOW; the address is the one the app sees (after TRUSTED_PROXIES)."""
    config = current_app.config
    token = str(config["METRICS_TOKEN"])
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in config["METRICS_NETWORKS"])


def refuse_unless_allowed() -> None:
    """Any request for /metrics from elsewhere is answered as an unknown path would be,
    whatever its method (so a 405 does not tell the endpoint is there)."""
    if request.path == PATH and not allowed():
        raise NotFound()


def scrape() -> Response:
    """Every process's numbers and the queue's, in Prometheus's text format."""
    registry: CollectorRegistry = current_app.extensions["coffer_metrics"]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def init_app(app: Flask) -> None:
    """Set this process's metrics up in the app's directory and guard /metrics."""
    directory = metrics_directory(app)
    setup_process(directory)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FilesCollector(directory))
    registry.register(QueueCollector(app.config["REDIS_URL"]))
    app.extensions["coffer_metrics"] = registry
    app.before_request(refuse_unless_allowed)
