"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from .. import metrics, schemas
from ..broker import get_redis
from ..extensions import db
from ..storage import get_storage
from .contract import PUBLIC, DocumentedBlueprint, operation, ref, response

bp = DocumentedBlueprint("health", __name__)

# What a failed check says to a client outside METRICS_ALLOW without METRICS_TOKEN.
UNAVAILABLE = "unavailable"


@bp.get(
    "/healthz",
    openapi=operation(
        "healthz",
        "Liveness: the process serves",
        "operations",
        {"200": response("Alive.", ref(schemas.Health))},
        security=PUBLIC,
    ),
)
def healthz() -> dict[str, Any]:
    """The process serves."""
    return schemas.Health(status="ok").body()


@bp.get(
    "/readyz",
    openapi=operation(
        "readyz",
        "Readiness: the database, Redis and the storage backend answer",
        "operations",
        {
            "200": response("Ready.", ref(schemas.Readiness)),
            "503": response("A check failed; its message replaces `ok`.", ref(schemas.Readiness)),
        },
        security=PUBLIC,
    ),
)
def readyz() -> tuple[dict[str, Any], int]:
    """The database, Redis and the storage backend all answer; a failed check's error is
    told only to clients /metrics is open to, others read `unavailable`."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks["database"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        get_storage().check()
        checks["storage"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["storage"] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    ready = all(v == "ok" for v in checks.values())
    if not ready and not metrics.allowed():
        # Error messages name hosts and ports: only the operators /metrics is open to see them.
        checks = {name: "ok" if v == "ok" else UNAVAILABLE for name, v in checks.items()}
    answer = schemas.Readiness(
        status="ready" if ready else "unavailable",
        checks=schemas.ReadinessChecks.model_validate(checks),
    )
    return answer.body(), 200 if ready else 503
