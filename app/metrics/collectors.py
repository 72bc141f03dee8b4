"""What a scrape reads: every process's metric files, and the queue as Redis holds it."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import utcparse

from ..broker import get_queue
from .processes import absorb_locked, locked

# The package's name, which log lines have always carried.
log = logging.getLogger(__package__)


class FilesCollector:
    """The totals of every process's files, read under the directory's lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        """Absorb ended processes, then add up what is left."""
        if not self.directory.is_dir():
            return iter(())
        with locked(self.directory):
            absorb_locked(self.directory)
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
