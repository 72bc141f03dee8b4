"""GET /metrics: Prometheus numbers that move with real requests, uploads, downloads and
jobs run by real RQ worker processes, added up across processes; the access rule; the
queue read from Redis at scrape time, and a scrape that survives Redis going away."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import update

from app import create_app
from app.models import Organization
from tests.support.client import Auth, bearer
from tests.support.config import app_config
from tests.support.database import run_sql
from tests.support.metrics import names, scrape, value
from tests.support.pipeline import process_env, upload, upload_as
from tests.support.processes import RedisServer, managed
from tests.support.tus import TUS, metadata
from tests.support.waiting import wait_for

TOKEN = "metrics-token-for-the-tests-0123456789"


def assert_not_found(response: Any) -> None:
    """The answer of a path that does not exist."""
    assert response.status_code == 404
    assert response.get_json() == {"error": "no such endpoint or object", "code": "not_found"}


# ---- requests ------------------------------------------------------------------------


def test_requests_are_counted_by_endpoint_and_status_never_by_raw_path(
    client: FlaskClient, auth: Auth
) -> None:
    before = scrape(client)
    assert client.get("/api/auth/me").status_code == 401
    auth.register()
    for _ in range(3):
        assert client.get("/api/auth/me").status_code == 200
    for path in ("/nope/1", "/nope/2", "/api/files/not-a-uuid-at-all"):
        assert client.get(path).status_code == 404

    after = scrape(client)
    counted = "coffer_http_requests_total"

    def delta(**labels: str) -> float:
        return value(after, counted, **labels) - value(before, counted, **labels)

    assert delta(endpoint="auth.me", status="200") == 3
    assert delta(endpoint="auth.me", status="401") == 1
    assert delta(endpoint="auth.register", status="201") == 1
    assert delta(endpoint="unmatched", status="404") == 3
    # The first scrape is itself a request.
    assert delta(endpoint="metrics.scrape", status="200") == 1
    paths = {dict(labels).get("endpoint") for name, labels in after if name == counted}
    assert not any(endpoint and "/" in endpoint for endpoint in paths), paths
    histogram = "coffer_http_request_duration_seconds"
    count = value(after, f"{histogram}_count", endpoint="auth.me")
    assert count - value(before, f"{histogram}_count", endpoint="auth.me") == 4
    assert value(after, f"{histogram}_bucket", endpoint="auth.me", le="+Inf") == count
    assert value(after, f"{histogram}_sum", endpoint="auth.me") > 0


# ---- access --------------------------------------------------------------------------


@pytest.mark.parametrize("app_overrides", [{"METRICS_ALLOW": "10.9.8.7, 192.0.2.0/24"}])
def test_only_allowed_addresses_may_scrape_others_get_the_unknown_path_answer(
    client: FlaskClient,
) -> None:
    # The test client comes from 127.0.0.1, which this app does not allow.
    for method in ("get", "post", "delete", "head"):
        response = getattr(client, method)("/metrics")
        assert response.status_code == 404, method
        if method != "head":
            assert_not_found(response)
    assert_not_found(client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.8.6"}))
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.200"}).status_code == 200


def test_by_default_only_the_loopback_address_may_scrape(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200
    assert_not_found(client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"}))
    # No token is set: a bearer header opens nothing.
    assert_not_found(
        client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"}, headers=bearer("x"))
    )
    # The allowed address may not write to it.
    assert client.post("/metrics").status_code == 405


@pytest.mark.parametrize("app_overrides", [{"METRICS_ALLOW": "", "METRICS_TOKEN": TOKEN}])
def test_the_token_opens_metrics_from_any_address(client: FlaskClient) -> None:
    elsewhere = {"REMOTE_ADDR": "198.51.100.20"}
    assert client.get("/metrics", environ_base=elsewhere, headers=bearer(TOKEN)).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    for wrong in (TOKEN[:-1], TOKEN + "x", "", TOKEN.upper()):
        assert_not_found(client.get("/metrics", environ_base=elsewhere, headers=bearer(wrong)))
    # METRICS_ALLOW is empty: not even loopback gets in without the token.
    assert_not_found(client.get("/metrics"))


@pytest.mark.parametrize("app_overrides", [{"TRUSTED_PROXIES": 1}])
def test_behind_a_trusted_proxy_the_forwarded_client_address_is_the_one_checked(
    client: FlaskClient,
) -> None:
    # The proxy itself runs on loopback; the client it forwards for is elsewhere.
    assert_not_found(client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}))
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"METRICS_ALLOW": "127.0.0.1,not-an-address"}, "METRICS_ALLOW must list IP"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
    ],
)
def test_bad_metrics_settings_are_refused_at_start(
    migrated_database: str,
    redis_server: RedisServer,
    tmp_path: Path,
    overrides: dict[str, str],
    message: str,
) -> None:
    from app.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        create_app(app_config(migrated_database, redis_server.url, tmp_path, **overrides))


# ---- uploads and downloads -----------------------------------------------------------


@pytest.mark.parametrize("app_overrides", [{"MAX_FILE_SIZE_MB": 1}])
def test_uploads_accepted_and_refused_by_reason_and_the_bytes_received(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    auth.register()
    token = auth.token()
    before = scrape(client)
    data = b"counted bytes\n" * 100
    assert auth.upload("kept.txt", data).status_code == 201
    assert auth.upload("empty.txt", b"").get_json()["code"] == "empty_file"
    big = upload(auth, "big.bin", b"x" * (1024 * 1024 + 1))
    assert big.get_json()["code"] == "file_too_large"
    no_file = client.post("/api/files/upload", data={}, headers=auth.headers())
    assert no_file.get_json()["code"] == "no_file"
    org_id = client.get("/api/org").get_json()["id"]
    run_sql(app, update(Organization).where(Organization.id == org_id).values(storage_quota_mb=0))
    assert auth.upload("over.txt", b"no room\n").get_json()["code"] == "quota_exceeded"

    # tus: one over the quota at creation, one too large, then one sent whole.
    tus = {**TUS, **bearer(token)}
    over = client.post(
        "/api/uploads", headers={**tus, "Upload-Length": "5", "Upload-Metadata": metadata("a")}
    )
    assert over.get_json()["code"] == "quota_exceeded"
    too_large = client.post(
        "/api/uploads",
        headers={**tus, "Upload-Length": str(2 * 1024 * 1024), "Upload-Metadata": metadata("b")},
    )
    assert too_large.get_json()["code"] == "file_too_large"
    run_sql(app, update(Organization).where(Organization.id == org_id).values(storage_quota_mb=10))
    resumable = b"sent in two pieces\n" * 50
    created = client.post(
        "/api/uploads",
        headers={**tus, "Upload-Length": str(len(resumable)), "Upload-Metadata": metadata("r")},
    )
    assert created.status_code == 201
    url = created.headers["Location"]
    for offset, piece in ((0, resumable[:300]), (300, resumable[300:])):
        answer = client.patch(
            url,
            data=piece,
            headers={
                **tus,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert answer.status_code == 204, answer.get_data(as_text=True)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    accepted, refused = "coffer_uploads_accepted_total", "coffer_uploads_refused_total"
    assert delta(accepted, via="multipart") == 1
    assert delta(accepted, via="tus") == 1
    for reason in ("empty_file", "file_too_large", "no_file", "quota_exceeded"):
        assert delta(refused, via="multipart", reason=reason) == 1, reason
    assert delta(refused, via="tus", reason="quota_exceeded") == 1
    assert delta(refused, via="tus", reason="file_too_large") == 1
    received = "coffer_upload_bytes_received_total"
    # Every byte of file content that arrived, kept or refused (over.txt: 8 bytes).
    assert delta(received, via="multipart") == len(data) + 1024 * 1024 + 1 + 8
    assert delta(received, via="tus") == len(resumable)


def test_downloads_count_the_bytes_they_answer_with(
    client: FlaskClient, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    data = b"0123456789" * 40
    file_id = auth.upload("digits.txt", data).get_json()["file_id"]
    worker()
    before = scrape(client)
    url = f"/api/files/{file_id}/download"
    with client.get(url) as full:
        assert full.status_code == 200 and full.data == data
    with client.get(url, headers={"Range": "bytes=10-29"}) as part:
        assert part.status_code == 206 and part.data == data[10:30]
    with client.get(url, headers={"If-None-Match": full.headers["ETag"]}) as cached:
        assert cached.status_code == 304
    with client.head(url) as head:
        assert head.status_code == 200
    after = scrape(client)
    sent = "coffer_download_bytes_sent_total"
    assert value(after, sent) - value(before, sent) == len(data) + 20


# ---- jobs in real worker processes ---------------------------------------------------


def test_a_worker_process_s_jobs_show_in_the_web_app_s_metrics_and_outlive_it(
    app: Flask, client: FlaskClient, auth: Auth, tmp_path: Path
) -> None:
    """The worker is a process of its own (`manage.py worker`), as in production: its
    counts reach the web app's /metrics while it runs, and stay once it has stopped."""
    auth.register()
    before = scrape(client)
    ready = auth.upload("fine.txt", b"plain words\n").get_json()["file_id"]
    failed = auth.upload("fake.png", b"not a picture\n").get_json()["file_id"]

    def verdicts() -> dict[str, str]:
        return {
            file_id: client.get(f"/api/files/{file_id}").get_json()["status"]
            for file_id in (ready, failed)
        }

    log_path = tmp_path / "worker.log"
    with managed(["worker"], process_env(app), log_path) as worker:
        try:
            wait_for(lambda: verdicts() == {ready: "ready", failed: "failed"}, 60, "verdicts")
        except AssertionError:
            raise AssertionError(f"no verdicts; the worker said:\n{log_path.read_text()}") from None
        running = scrape(client)
        worker_pid = worker.pid
    stopped = scrape(client)

    jobs, duration = "coffer_validation_jobs_total", "coffer_validation_job_duration_seconds"
    for samples in (running, stopped):
        assert value(samples, jobs, verdict="ready") - value(before, jobs, verdict="ready") == 1
        assert value(samples, jobs, verdict="failed") - value(before, jobs, verdict="failed") == 1
        assert value(samples, f"{duration}_count", verdict="ready") == value(
            samples, jobs, verdict="ready"
        )
        assert value(samples, f"{duration}_sum", verdict="ready") > 0
    # The stopped worker's numbers were folded into the archive: none of its files is left.
    directory = Path(app.config["INSTANCE_PATH"]) / "metrics"
    left = [path.name for path in directory.iterdir() if str(worker_pid) in path.name]
    assert left == []


def test_a_forking_worker_leaves_no_file_per_job(
    app: Flask, client: FlaskClient, auth: Auth, tmp_path: Path
) -> None:
    """`worker --fork` runs each job in a work horse of its own: the horses' counts are
    all there, and the directory does not keep a file set per horse."""
    auth.register()
    token = auth.token()
    for n in range(4):
        assert upload_as(client, token, f"n{n}.txt", b"note %d\n" % n).status_code == 201
    env = process_env(app)
    with managed(["worker", "--burst", "--fork"], env, tmp_path / "worker.log") as worker:
        assert worker.popen.wait(timeout=120) == 0
    samples = scrape(client)
    assert value(samples, "coffer_validation_jobs_total", verdict="ready") == 4
    directory = Path(app.config["INSTANCE_PATH"]) / "metrics"
    files = [path.name for path in directory.glob("*.db") if "archive" not in path.name]
    kinds = [name.partition("_")[0] for name in files]
    # The test's own process (the web app here) is the only one left with files.
    assert len(kinds) == len(set(kinds)), files


@pytest.mark.parametrize(
    "app_overrides", [{"JOB_RETRY_INTERVALS": [60], "STORAGE_BACKEND": "local"}], ids=["local"]
)
def test_retries_scheduled_and_the_failed_registry_are_read_from_redis(
    app: Flask, client: FlaskClient, auth: Auth, worker: Callable[[], None], redis: Redis
) -> None:
    """Local storage: the test makes a stored file unreadable (a folder in its place)."""
    auth.register()
    queued = scrape(client)
    assert value(queued, "coffer_redis_up") == 1
    assert value(queued, "coffer_queue_jobs") == 0
    file_id = auth.upload("flaky.txt", b"readable later\n").get_json()["file_id"]
    time.sleep(0.05)
    waiting = scrape(client)
    assert value(waiting, "coffer_queue_jobs") == 1
    assert value(waiting, "coffer_queue_oldest_job_age_seconds") > 0
    (path,) = Path(app.config["UPLOAD_FOLDER"]).glob(f"*/{file_id}/*")
    path.unlink()
    path.mkdir()

    worker()
    retried = scrape(client)
    assert value(retried, "coffer_validation_jobs_total", verdict="retry") == 1
    assert value(retried, "coffer_queue_jobs") == 0
    assert value(retried, "coffer_queue_oldest_job_age_seconds") == 0
    assert value(retried, "coffer_queue_scheduled_jobs") == 1
    assert value(retried, "coffer_queue_failed_jobs") == 0

    # The retry falls due now, and fails for good: the job lands in the failed registry.
    from rq.registry import ScheduledJobRegistry

    from app.broker import get_queue

    with app.app_context():
        queue = get_queue(redis)
        for job in ScheduledJobRegistry(queue=queue).get_job_ids():
            queue.enqueue_job(queue.fetch_job(job))
            ScheduledJobRegistry(queue=queue).remove(job)
    worker()
    gave_up = scrape(client)
    assert value(gave_up, "coffer_validation_jobs_total", verdict="failed") == 1
    assert value(gave_up, "coffer_queue_scheduled_jobs") == 0
    assert value(gave_up, "coffer_queue_failed_jobs") == 1
    path.rmdir()
    path.write_bytes(b"readable later\n")


def test_a_redis_outage_leaves_the_queue_gauges_out_and_the_scrape_working(
    migrated_database: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    flask_app = create_app(app_config(migrated_database, server.url, tmp_path))
    client = flask_app.test_client()
    try:
        up = scrape(client)
        assert value(up, "coffer_redis_up") == 1
        assert "coffer_queue_jobs" in names(up)
    finally:
        server.stop()
    assert client.get("/healthz").status_code == 200
    down = scrape(client)
    assert value(down, "coffer_redis_up") == 0
    assert not {name for name in names(down) if name.startswith("coffer_queue_")}
    # The counters are still there, the requests of the outage counted.
    assert value(down, "coffer_http_requests_total", endpoint="health.healthz", status="200") == 1
    assert value(down, "coffer_http_requests_total", endpoint="metrics.scrape", status="200") == 1
    flask_app.extensions["redis"].close()


# ---- the directory -------------------------------------------------------------------


def test_a_fresh_start_begins_from_zero(
    app: Flask, auth: Auth, migrated_database: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A deployment's processes all ended (a restart): the first to start empties the
    directory, so totals start again from zero rather than adding to the last run's."""
    auth.register()
    assert auth.upload("one.txt", b"one\n").status_code == 201
    env = process_env(app)
    elsewhere = tmp_path / "other-host"
    env["INSTANCE_PATH"] = str(elsewhere / "instance")
    with managed(["worker", "--burst"], env, tmp_path / "worker.log") as worker:
        assert worker.popen.wait(timeout=120) == 0
    directory = elsewhere / "instance" / "metrics"
    assert any(directory.glob("*.db")), "the worker left its numbers behind"

    # A web app starting on that folder now: no process of the last run lives.
    restarted = create_app(
        app_config(migrated_database, redis_server.url, elsewhere, UPLOAD_FOLDER=str(tmp_path))
    )
    samples = scrape(restarted.test_client())
    assert value(samples, "coffer_validation_jobs_total", verdict="ready") == 0
    assert value(samples, "coffer_uploads_accepted_total", via="multipart") == 0
