"""Prometheus metrics, counted by every web thread and worker process of a host and served
together by `GET /metrics` (prometheus-client's multiprocess mode).

Each process writes its counters and histograms to memory-mapped files of its own in
`<INSTANCE_PATH>/metrics`; a scrape adds them up. Three rules keep that directory true:

- Started afresh: the first Coffer process to start while no other process using the
  directory lives (supervisord starts web and workers at once; `make run` and the container
  run `db upgrade` just before) empties it. Processes register under a lock as they start,
  with their start time, so a pid reused after a restart does not pass for a live process.
  A program restarted alone while the others run (a crash) keeps everyone's totals.
- Bounded: the files of a process that ended (a work horse of `worker --fork`, a web
  process that crashed) are added into one archive file per kind and removed, at every
  scrape and after every forked job. Totals never go down while the deployment runs, so
  Prometheus sees no false counter reset, and the directory holds one file set per live
  process plus the archive. (prometheus-client's `mark_process_dead` only removes live
  gauges; counters and histograms are what Coffer keeps.)
- Read at scrape: the queue gauges come from Redis when Prometheus asks, never from files;
  a Redis outage leaves them out (and reports `coffer_redis_up 0`) instead of failing.

The multiprocess directory is per process: a process that builds a second app on another
instance folder (the test suite does) moves its counting there, from zero.
"""

from __future__ import annotations

import fcntl
import glob
import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from redis import Redis
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import utcparse
from werkzeug.exceptions import NotFound

from .api.contract import PUBLIC, DocumentedBlueprint, error, operation, response
from .broker import get_queue
from .models import DeliveryOutcome
from .upload_endpoints import UPLOAD_VIA

log = logging.getLogger(__name__)

PATH = "/metrics"
ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
LOCK_NAME = ".lock"
REGISTRATION_PREFIX = "process-"
# The kinds of file whose totals outlive their process (Coffer keeps no file-backed gauge).
ARCHIVED_KINDS = ("counter", "histogram")

# The endpoints whose bodies are files, and how each sends them.
VERDICTS = ("ready", "failed", "retry", "skipped")
# The outcomes of a delivery attempt, as the deliveries list records them.
WEBHOOK_OUTCOMES = tuple(outcome.value for outcome in DeliveryOutcome)
UNMATCHED = "unmatched"

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


# ---- the metrics ---------------------------------------------------------------------


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
        # Series that exist from the start read as 0 rather than as absent.
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


def count_webhook_delivery(outcome: str) -> None:
    """One webhook delivery attempt ended: `succeeded`, `retrying` or `failed` (gave up)."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"unknown webhook delivery outcome {outcome!r}")
    if _metrics is not None:
        _metrics.webhook_deliveries.labels(outcome).inc()


# ---- the process's directory ---------------------------------------------------------


@dataclass
class ProcessState:
    """Which directory this process counts into; `generation` moves with it."""

    directory: str | None = None
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_process = ProcessState()


def _identity() -> str:
    """This process's name in its files: the pid, so a fork (a work horse) gets files of
    its own; a suffix once the process has moved to another directory, which makes
    prometheus-client reopen every value's file there."""
    pid = os.getpid()
    return str(pid) if not _process.generation else f"{pid}-{_process.generation}"


# Replaces prometheus-client's choice at import (made from the environment before Coffer
# could set it): every Coffer metric is multiprocess, named by _identity.
values.ValueClass = values.MultiProcessValue(_identity)


def metrics_directory(app: Flask) -> Path:
    """Where this app's processes keep their metric files."""
    return Path(app.config["INSTANCE_PATH"]) / "metrics"


def setup_process(directory: Path) -> None:
    """Count this process's metrics into `directory`, starting it afresh if no process
    using it lives; done before any metric is made or counted."""
    global _metrics
    path = str(directory)
    with _process.lock:
        if _process.directory == path:
            return
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            if not any(_registered_alive(directory)):
                _empty(directory)
            _register(directory)
        os.environ[ENV_VAR] = path
        if _process.directory is not None:
            _process.generation += 1
        _process.directory = path
        if _metrics is None:
            _metrics = Metrics()


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the directory across processes (flock on its lock file)."""
    with open(directory / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    """A process's start time since boot (Linux's /proc), None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name, which may itself hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registered_alive(directory: Path) -> Iterator[int]:
    """The pids of registered processes still running, each the very process that
    registered (its start time matches), not another that got its pid since."""
    for entry in directory.glob(f"{REGISTRATION_PREFIX}*"):
        try:
            pid = int(entry.name[len(REGISTRATION_PREFIX) :])
            recorded = entry.read_text().strip()
        except (ValueError, OSError):
            continue
        if _alive(pid) and (not recorded or recorded == (_start_time(pid) or recorded)):
            yield pid


def _register(directory: Path) -> None:
    pid = os.getpid()
    (directory / f"{REGISTRATION_PREFIX}{pid}").write_text(_start_time(pid) or "")


def _empty(directory: Path) -> None:
    """Remove every metric file and registration: the deployment starts from zero."""
    for entry in directory.iterdir():
        if entry.name != LOCK_NAME and entry.is_file():
            entry.unlink(missing_ok=True)


def _file_pid(path: str) -> int | None:
    """The pid in a metric file's name (`counter_123.db`, `counter_123-2.db`); None for
    the archive."""
    identity = os.path.basename(path)[: -len(".db")].rpartition("_")[2]
    try:
        return int(identity.partition("-")[0])
    except ValueError:
        return None


def absorb_ended_processes(directory: Path | None = None) -> None:
    """Add the totals of processes that ended into the archive and remove their files,
    so the directory stays one file set per live process (see the module's docstring)."""
    target = directory or (Path(_process.directory) if _process.directory else None)
    if target is None or not target.is_dir():
        return
    with _locked(target):
        _absorb(target)


def _absorb(directory: Path) -> None:
    """absorb_ended_processes, with the directory's lock held."""
    ended: dict[str, list[str]] = {}
    pids: set[int] = set()
    for path in glob.glob(os.path.join(directory, "*.db")):
        pid = _file_pid(path)
        if pid is None or _alive(pid):
            continue
        pids.add(pid)
        ended.setdefault(os.path.basename(path).partition("_")[0], []).append(path)
    for kind, paths in ended.items():
        if kind in ARCHIVED_KINDS:
            _archive(directory, kind, paths)
    for pid in pids:
        mark_process_dead(pid, str(directory))  # its live gauges, should any appear
    for entry in directory.glob(f"{REGISTRATION_PREFIX}*"):
        pid_text = entry.name[len(REGISTRATION_PREFIX) :]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            entry.unlink(missing_ok=True)


def _archive(directory: Path, kind: str, paths: list[str]) -> None:
    """Add these files' values into `<kind>_archive.db`, then remove them.

    The archive is written whole beside it and renamed over it, so a scrape (which holds
    the same lock) reads either the old archive and the files, or the new archive alone.
    prometheus-client has no merge-and-keep of its own; its MmapedDict is the file format.
    """
    archive = directory / f"{kind}_archive.db"
    totals: dict[str, float] = {}
    sources = ([str(archive)] if archive.exists() else []) + paths
    for source in sources:
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(source):
            totals[key] = totals.get(key, 0.0) + value
    staging = directory / f".{kind}_archive.new"
    staging.unlink(missing_ok=True)
    merged = MmapedDict(str(staging))
    try:
        for key, value in totals.items():
            merged.write_value(key, value, 0.0)
    finally:
        merged.close()
    os.replace(staging, archive)
    for path in paths:
        Path(path).unlink(missing_ok=True)


# ---- the scrape ----------------------------------------------------------------------


class FilesCollector:
    """The totals of every process's files, read under the directory's lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        """Absorb ended processes, then add up what is left."""
        if not self.directory.is_dir():
            return iter(())
        with _locked(self.directory):
            _absorb(self.directory)
            files = glob.glob(os.path.join(self.directory, "*.db"))
            return iter(list(MultiProcessCollector.merge(files, accumulate=True)))


class QueueCollector:
    """The validation queue as Redis holds it at scrape time.

    Redis unreachable: `coffer_redis_up 0` and none of the queue gauges, never an error.
    """

    def __init__(self, redis_url: str) -> None:
        # Its own client with short waits: a hanging Redis must not hold a scrape long.
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
        queue = get_queue(self.redis)
        self.queue_key = queue.key
        self.job_prefix = queue.job_class.redis_job_namespace_prefix
        self.failed_key = FailedJobRegistry(queue=queue).key
        self.scheduled_key = ScheduledJobRegistry(queue=queue).key
        self.started_key = StartedJobRegistry(queue=queue).key

    def collect(self) -> Iterator[Metric]:
        """One round trip for the sizes, one more for the oldest job's age."""
        up = GaugeMetricFamily("coffer_redis_up", "1 when Redis answered this scrape, else 0.")
        try:
            readings = self._read()
        except RedisError as exc:
            log.warning("metrics: Redis did not answer, queue gauges left out: %s", exc)
            up.add_metric([], 0)
            return iter([up])
        up.add_metric([], 1)
        return iter([up, *readings])

    def _read(self) -> list[Metric]:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.queue_key)
            pipe.lindex(self.queue_key, 0)
            pipe.zcard(self.failed_key)
            pipe.zcard(self.scheduled_key)
            pipe.zcard(self.started_key)
            queued, oldest, failed, scheduled, started = pipe.execute()
        age = 0.0
        if oldest is not None:
            enqueued = self.redis.hget(self.job_prefix + oldest.decode(), "enqueued_at")
            if isinstance(enqueued, bytes) and enqueued:
                moment = utcparse(enqueued.decode())
                age = max(0.0, (datetime.now(UTC) - moment).total_seconds())

        def gauge(name: str, text: str, value: float) -> Metric:
            family = GaugeMetricFamily(name, text)
            family.add_metric([], value)
            return family

        return [
            gauge("coffer_queue_jobs", "Validation jobs waiting in the queue.", queued),
            gauge(
                "coffer_queue_oldest_job_age_seconds",
                "Seconds the oldest waiting validation job has waited (0 when none waits).",
                age,
            ),
            gauge("coffer_queue_started_jobs", "Validation jobs in hand.", started),
            gauge(
                "coffer_queue_failed_jobs",
                "Jobs in RQ's failed-job registry (their retries exhausted).",
                failed,
            ),
            gauge(
                "coffer_queue_scheduled_jobs",
                "Jobs scheduled to run later: validations waiting out a retry's backoff.",
                scheduled,
            ),
        ]


# ---- the endpoint --------------------------------------------------------------------

bp = DocumentedBlueprint("metrics", __name__)


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


@bp.get(
    PATH,
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
    registry: CollectorRegistry = current_app.extensions["coffer_metrics"]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def init_app(app: Flask) -> None:
    """Set this process's metrics up in the app's directory and mount /metrics."""
    directory = metrics_directory(app)
    setup_process(directory)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FilesCollector(directory))
    registry.register(QueueCollector(app.config["REDIS_URL"]))
    app.extensions["coffer_metrics"] = registry
    app.before_request(refuse_unless_allowed)
    app.register_blueprint(bp)
