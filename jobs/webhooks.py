"""The webhook delivery job: one signed POST of an event to one endpoint per run, retried
by RQ with backoff until it succeeds or the retries run out."""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from app import metrics
from app.extensions import db
from app.models import DeliveryOutcome
from app.services import webhooks

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The attempt did not succeed and another is due: RQ schedules it."""


# RQ's line for any exception a job raised, logged at ERROR with the whole traceback.
RQ_JOB_EXCEPTION = "Worker %s: job %s: exception raised while executing (%s)\n%s"


class RetryLines(logging.Filter):
    """Leaves out RQ's ERROR line and traceback for a delivery that will be retried: the
    attempt was already logged as one WARNING line (record_attempt in
    app/services/webhooks/delivery.py), and an endpoint that is down is no error of
    Coffer's. Other job exceptions stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for RQ's exception line of a DeliveryFailed."""
        if record.msg != RQ_JOB_EXCEPTION or not isinstance(record.args, tuple):
            return True
        if len(record.args) != 4:
            return True
        function, trace = record.args[2], str(record.args[3]).rstrip()
        last_line = trace.rsplit("\n", 1)[-1]
        return not (
            function == webhooks.DELIVER
            and last_line.startswith(f"{__name__}.{DeliveryFailed.__name__}:")
        )


def deliver(
    webhook_id: int,
    organization_id: int,
    event: dict[str, Any],
    webhook_created_at: str | None = None,
) -> str:
    """Send one event to one endpoint and record the attempt; returns its outcome.

    `webhook_created_at` names the endpoint the delivery was queued for (jobs queued by an
    older Coffer have none): a retry whose endpoint was deleted is dropped, even when a
    new endpoint has its id.

    Raises DeliveryFailed while retries are left, so RQ runs the job again after the next
    WEBHOOK_RETRY_SECONDS interval; the last failure is recorded as `failed` and returns,
    keeping endpoints that are down out of RQ's failed-job registry.
    """
    job = get_current_job()
    try:
        hook = webhooks.webhook_for_delivery(
            organization_id, webhook_id, webhook_created_at, event["created_at"]
        )
        if hook is None:
            return "dropped"  # the endpoint was deleted
        retries_left = job.retries_left if job is not None else None
        intervals = (job.retry_intervals if job is not None else None) or []
        # RQ counts retries down; the attempt's number counts up from 1.
        attempt_number = len(intervals) - retries_left + 1 if retries_left is not None else 1
        retry_in = job.get_retry_interval() if job is not None and job.retries_left else None
        attempt = webhooks.send(hook, event["id"], webhooks.event_body(event))
        outcome = webhooks.record_attempt(
            hook, event["id"], event["type"], attempt_number, attempt, retry_in
        )
    finally:
        db.session.remove()
    metrics.count_webhook_delivery(outcome)
    if outcome is DeliveryOutcome.RETRYING:
        raise DeliveryFailed(f"webhook {webhook_id}: {attempt.error or attempt.status_code}")
    return str(outcome)
