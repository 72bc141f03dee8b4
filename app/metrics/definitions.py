"""The metrics Coffer counts and the functions that count them, each a no-op in a process
whose metrics are not set up (app/metrics/processes.py sets them up)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from ..models import DeliveryOutcome
from ..upload_endpoints import UPLOAD_VIA

VERDICTS = ("ready", "failed", "retry", "skipped")
# What a previews job run did: made both images, skipped the file (no previewable type, over
# PREVIEW_MAX_PIXELS, gone, already has them) or failed (it would not decode).
PREVIEW_OUTCOMES = ("made", "skipped", "failed")
# The outcomes of a delivery attempt, as the deliveries list records them.
WEBHOOK_OUTCOMES = tuple(outcome.value for outcome in DeliveryOutcome)
UNMATCHED = "unmatched"

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """Every metric Coffer counts; made once per process, after its directory is chosen."""

    def __init__(self) -> None:
        # registry=None: scrapes read the files of every process, not this one's objects.
        self.requests = Counter(
            "coffer_http_requests",
            "HTTP requests answered, by Flask endpoint (never the raw path) and status.",
            ["endpoint", "status"],
            registry=None,
        )
        self.latency = Histogram(
            "coffer_http_request_duration_seconds",
            "Seconds from a request's start until its answer was handed to the server.",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=None,
        )
        self.uploads_accepted = Counter(
            "coffer_uploads_accepted",
            "Uploads that became a file, by how they were sent (multipart or tus).",
            ["via"],
            registry=None,
        )
        self.uploads_refused = Counter(
            "coffer_uploads_refused",
            "Upload requests answered with an error, by how they were sent and the error code.",
            ["via", "reason"],
            registry=None,
        )
        self.bytes_received = Counter(
            "coffer_upload_bytes_received",
            "Bytes of file content received by upload requests, kept or not.",
            ["via"],
            registry=None,
        )
        self.bytes_sent = Counter(
            "coffer_download_bytes_sent",
            "Bytes of file content answered by downloads (200 and 206; redirects send none).",
            registry=None,
        )
        self.jobs = Counter(
            "coffer_validation_jobs",
            "Validation job runs, by verdict: ready, failed, retry (a transient error, tried "
            "again) or skipped (the file was deleted, or already had its verdict).",
            ["verdict"],
            registry=None,
        )
        self.job_duration = Histogram(
            "coffer_validation_job_duration_seconds",
            "Seconds one validation job run took, by verdict.",
            ["verdict"],
            buckets=JOB_BUCKETS,
            registry=None,
        )
        self.webhook_deliveries = Counter(
            "coffer_webhook_deliveries",
            "Webhook delivery attempts, by outcome: succeeded, retrying or failed (gave up).",
            ["outcome"],
            registry=None,
        )
        self.previews = Counter(
            "coffer_previews",
            "Previews job runs, by outcome: made, skipped (no previewable type, over "
            "PREVIEW_MAX_PIXELS, gone or already made) or failed (the content would not decode).",
            ["outcome"],
            registry=None,
        )
        # Series that exist from the start read as 0 rather than as absent.
        for outcome in PREVIEW_OUTCOMES:
            self.previews.labels(outcome)
        for verdict in VERDICTS:
            self.jobs.labels(verdict)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)
        for via in ("multipart", "tus"):
            self.uploads_accepted.labels(via)
            self.bytes_received.labels(via)
        # labels() looks its child up under a lock on every call; the request path keeps
        # its own map of children (a dict read is atomic) for the few it meets.
        self.request_children: dict[tuple[str, int], tuple[Any, Any]] = {}


_metrics: Metrics | None = None


def start() -> None:
    """Make this process's metrics, once; called when its directory has been chosen."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()


# ---- counting (each a no-op in a process that has not set metrics up) ----------------


def observe_request(
    endpoint: str | None, status: int, seconds: float, error_code: str | None
) -> None:
    """Count one answered request; an upload answered with an error also counts as refused."""
    metrics = _metrics
    if metrics is None:
        return
    name = endpoint or UNMATCHED
    children = metrics.request_children.get((name, status))
    if children is None:
        children = (metrics.requests.labels(name, str(status)), metrics.latency.labels(name))
        metrics.request_children[(name, status)] = children
    children[0].inc()
    children[1].observe(seconds)
    if status >= 400 and name in UPLOAD_VIA:
        reason = error_code or f"http_{status}"
        metrics.uploads_refused.labels(UPLOAD_VIA[name], reason).inc()


def count_upload_accepted(via: str) -> None:
    """An upload became a file (`multipart` or `tus`)."""
    if _metrics is not None:
        _metrics.uploads_accepted.labels(via).inc()


def count_bytes_received(via: str, size: int) -> None:
    """`size` bytes of file content arrived in an upload request."""
    if _metrics is not None and size:
        _metrics.bytes_received.labels(via).inc(size)


def count_bytes_sent(size: int) -> None:
    """A download answered with `size` bytes of file content."""
    if _metrics is not None and size:
        _metrics.bytes_sent.inc(size)


def count_validation(verdict: str, seconds: float) -> None:
    """One validation job run ended with this verdict after `seconds`."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown validation verdict {verdict!r}")
    if _metrics is not None:
        _metrics.jobs.labels(verdict).inc()
        _metrics.job_duration.labels(verdict).observe(seconds)


def count_preview(outcome: str) -> None:
    """One previews job run ended: `made`, `skipped` or `failed`."""
    if outcome not in PREVIEW_OUTCOMES:
        raise ValueError(f"unknown preview outcome {outcome!r}")
    if _metrics is not None:
        _metrics.previews.labels(outcome).inc()


def count_webhook_delivery(outcome: str) -> None:
    """One webhook delivery attempt ended: `succeeded`, `retrying` or `failed` (gave up)."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"unknown webhook delivery outcome {outcome!r}")
    if _metrics is not None:
        _metrics.webhook_deliveries.labels(outcome).inc()
