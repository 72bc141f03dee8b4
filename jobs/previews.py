"""The previews job: make a ready file's small and large previews (app/files/previews.py)
after its verdict has committed; whatever happens, the file stays as it is."""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path

from rq import get_current_job

from app import metrics
from app.extensions import db
from app.files import previews

log = logging.getLogger(__name__)


def make_previews(file_id: str, organization_id: int) -> str:
    """Make one file's previews; returns the outcome (`made`, `skipped` or `failed`).

    Never raises for the file's content: a failure is logged and counted, and RQ does not
    retry it (the same bytes would fail again). Safe to run twice.
    """
    extra = {"file_id": file_id}
    started = time.perf_counter()
    try:
        outcome = previews.make(organization_id, file_id)
    except Exception:  # logged and counted; the file's verdict stands
        db.session.rollback()
        log.exception("the previews of file %s could not be made", file_id, extra=extra)
        outcome = "failed"
    finally:
        db.session.remove()
    metrics.count_preview(outcome)
    peak_mib = peak_rss_mib()
    job = get_current_job()
    if job is not None:
        # Kept with the job's record: what making previews cost the worker, for `make bench`
        # and the tests.
        job.meta["peak_rss_mib"] = peak_mib
        job.save_meta()  # type: ignore[no-untyped-call]
    log.info(
        "previews of file %s: %s in %.2f s (worker peak RSS %d MiB)",
        file_id,
        outcome,
        time.perf_counter() - started,
        peak_mib,
        extra={**extra, "outcome": outcome, "peak_rss_mib": peak_mib},
    )
    return outcome


def peak_rss_mib() -> int:
    """The most memory this process has held since it started its program, in MiB.

    Linux's VmHWM, which an exec starts afresh; getrusage's ru_maxrss (elsewhere) keeps the
    peak of the process that forked it too."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
