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

The package's parts: definitions.py (the metrics and the functions that count them),
processes.py (the directory's life), collectors.py (what a scrape reads) and endpoint.py
(GET /metrics and init_app).
"""

from __future__ import annotations

from .definitions import (
    Metrics,
    count_bytes_received,
    count_bytes_sent,
    count_preview,
    count_upload_accepted,
    count_validation,
    count_webhook_delivery,
    observe_request,
)
from .endpoint import PATH, allowed, init_app, refuse_unless_allowed, scrape
from .processes import ENV_VAR, absorb_ended_processes, metrics_directory, setup_process

__all__ = [
    "ENV_VAR",
    "PATH",
    "Metrics",
    "absorb_ended_processes",
    "allowed",
    "count_bytes_received",
    "count_bytes_sent",
    "count_preview",
    "count_upload_accepted",
    "count_validation",
    "count_webhook_delivery",
    "init_app",
    "metrics_directory",
    "observe_request",
    "refuse_unless_allowed",
    "scrape",
    "setup_process",
]
