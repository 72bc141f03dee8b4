"""The previews job: make a ready file's small and large previews (app/files/previews.py)
after its verdict has committed; whatever happens, the file stays as it is."""

from __future__ import annotations

import logging
import resource
import time

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
    # The process's peak so far (KiB on Linux): what making previews may cost a worker.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    log.info(
        "previews of file %s: %s in %.2f s (worker peak RSS %d MiB)",
        file_id,
        outcome,
        time.perf_counter() - started,
        peak_mib,
        extra={**extra, "outcome": outcome, "peak_rss_mib": peak_mib},
    )
    return outcome
