"""The pipeline heals itself: whatever Redis forgets or however long it is away, every
file reaches its verdict with no operator, and session calls answer 503 meanwhile."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Worker
from rq.suspension import suspend

from jobs.worker import run as run_worker
from tests.support.client import Auth, bearer
from tests.support.pipeline import (
    all_final,
    assert_nothing_lost,
    process_env,
    text_bytes,
    upload_as,
)
from tests.support.processes import RedisServer, managed
from tests.support.waiting import wait_for

KiB = 1024
SWEEP_SECONDS = 5


@pytest.fixture
def app_overrides(own_redis: RedisServer) -> dict[str, Any]:
    """The app talks to the test's own Redis and sweeps every few seconds."""
    return {"REDIS_URL": own_redis.url, "SWEEP_SECONDS": SWEEP_SECONDS}


def hung_redis_bound(app: Flask) -> float:
    """How long a request may wait on a Redis that never answers: three times the longest
    socket timeout of Coffer's clients (the app's, app/broker.py; the rate limiter's,
    app/config.py), and a few seconds."""
    socket_timeout = max(
        app.extensions["redis"].connection_pool.connection_kwargs["socket_timeout"],
        app.config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"],
    )
    return 3 * socket_timeout + 5


def statuses(client: FlaskClient, token: str) -> dict[str, str]:
    """Every file of the token's organization and its status."""
    listing = client.get("/api/files?limit=100", headers=bearer(token)).get_json()
    return {f["id"]: f["status"] for f in listing["files"]}


def upload_notes(client: FlaskClient, token: str, count: int, seed: int) -> dict[str, bytes]:
    """Upload `count` small text files by token; their ids and bytes."""
    sent = {}
    for n in range(count):
        data = text_bytes(4 * KiB + n, seed=seed + n)
        response = upload_as(client, token, f"note-{seed}-{n}.txt", data)
        assert response.status_code == 201, response.get_json()
        sent[response.get_json()["file_id"]] = data
    return sent


def assert_all_ready(client: FlaskClient, token: str, sent: dict[str, bytes]) -> None:
    """Every file ready, with its exact bytes."""
    for file_id, data in sent.items():
        details = client.get(f"/api/files/{file_id}", headers=bearer(token)).get_json()
        assert details["status"] == "ready", details
        download = client.get(f"/api/files/{file_id}/download", headers=bearer(token))
        assert download.data == data
        download.close()


@pytest.mark.slow
def test_a_lost_queue_is_refilled_by_the_sweep_within_two_intervals(
    app: Flask, auth: Auth, own_redis: RedisServer, tmp_path: Path
) -> None:
    """FLUSHDB while the workers are paused: no job is left, yet every file ends ready."""
    auth.register()
    token = auth.token()
    script = app.test_client()
    redis = Redis.from_url(own_redis.url)
    env = process_env(app, SWEEP_SECONDS=str(SWEEP_SECONDS))
    with managed(["worker"], env, tmp_path / "worker.log") as worker:
        suspend(redis)
        sent = upload_notes(script, token, 10, seed=1)
        assert set(statuses(script, token).values()) == {"pending"}

        redis.flushdb()  # the queue, the jobs and the pause are gone
        lost_at = time.monotonic()
        wait_for(
            lambda: all_final(script, bearer(token)),
            2 * SWEEP_SECONDS,
            "every file to be validated after the queue was lost",
        )
        healed_in = time.monotonic() - lost_at
        assert worker.popen.poll() is None, worker.output()
    assert_all_ready(script, token, sent)
    assert healed_in <= 2 * SWEEP_SECONDS
    assert_nothing_lost(app)


@pytest.mark.slow
def test_redis_away_for_twenty_seconds_answers_503_then_recovers_by_itself(
    app: Flask, auth: Auth, own_redis: RedisServer, tmp_path: Path
) -> None:
    """While Redis is away: session calls 503 in JSON, token calls work; after: all heals."""
    auth.register()
    token = auth.token()
    script = app.test_client()
    before = upload_notes(script, token, 3, seed=10)
    env = process_env(app, SWEEP_SECONDS=str(SWEEP_SECONDS))
    with managed(["worker"], env, tmp_path / "worker.log") as worker:
        wait_for(lambda: all_final(script, bearer(token)), 60, "the first files to be validated")
        visitor = app.test_client()

        own_redis.stop()
        during: dict[str, bytes] = {}
        away_until = time.monotonic() + 20
        round_ = 0
        while time.monotonic() < away_until:
            round_ += 1
            answers = {
                "me": auth.client.get("/api/auth/me"),
                "logout": auth.logout(),
                "login": visitor.post(
                    "/api/auth/login", json={"email": "admin@acme.test", "password": auth.password}
                ),
                "register": visitor.post(
                    "/api/auth/register",
                    json={
                        "email": f"new{round_}@acme.test",
                        "password": "long enough",
                        "organization_name": f"Other {round_}",
                    },
                ),
            }
            for name, response in answers.items():
                assert response.status_code == 503, (name, response.data)
                body = response.get_json()
                assert body["code"] == "service_unavailable", (name, body)
            listing = script.get("/api/files", headers=bearer(token))
            assert listing.status_code == 200
            during.update(upload_notes(script, token, 1, seed=100 + round_))
            time.sleep(1)
        assert during and set(statuses(script, token)[f] for f in during) == {"pending"}

        own_redis.start()  # the same port, and nothing of what it held
        back_at = time.monotonic()
        wait_for(
            lambda: all_final(script, bearer(token)),
            2 * SWEEP_SECONDS,
            "every file uploaded during the outage to be validated",
        )
        healed_in = time.monotonic() - back_at
        assert worker.popen.poll() is None, "the worker must survive the outage"
    assert_all_ready(script, token, {**before, **during})
    assert healed_in <= 2 * SWEEP_SECONDS
    # Sessions lived in the Redis that forgot everything: sign in again, no restart needed.
    assert auth.client.get("/api/auth/me").status_code == 401
    assert auth.login().status_code == 200
    assert auth.client.get("/api/auth/me").status_code == 200
    assert_nothing_lost(app)


@pytest.mark.slow
def test_two_sweepers_on_two_instances_never_validate_a_file_into_a_wrong_state(
    app: Flask, auth: Auth, own_redis: RedisServer, tmp_path: Path
) -> None:
    """Two workers of two instances sweep the same lost queue: each file one right verdict."""
    auth.register()
    token = auth.token()
    script = app.test_client()
    redis = Redis.from_url(own_redis.url)
    sweep = 1
    first_env = process_env(app, SWEEP_SECONDS=str(sweep))
    second_env = process_env(
        app, SWEEP_SECONDS=str(sweep), INSTANCE_PATH=str(tmp_path / "second-instance")
    )
    suspend(redis)
    sent = upload_notes(script, token, 12, seed=200)
    sent.update(
        {
            response.get_json()["file_id"]: data
            for data, response in [
                (data, upload_as(script, token, "not-a-picture.png", data))
                for data in [text_bytes(2 * KiB, seed=300)]
            ]
        }
    )
    with (
        managed(["worker"], first_env, tmp_path / "first.log") as first,
        managed(["worker"], second_env, tmp_path / "second.log") as second,
    ):
        for _ in range(3):  # lose the queue again and again while both sweep
            redis.flushdb()
            time.sleep(sweep * 1.5)
        wait_for(lambda: all_final(script, bearer(token)), 60, "every file to reach its verdict")
        assert first.popen.poll() is None and second.popen.poll() is None
    final = statuses(script, token)
    wrong = [f for f, status in final.items() if status != "ready"]
    assert len(wrong) == 1, final  # only the text named .png
    details = script.get(f"/api/files/{wrong[0]}", headers=bearer(token)).get_json()
    assert details["status"] == "failed"
    assert "image/png" in details["error_message"]
    assert_all_ready(script, token, {f: d for f, d in sent.items() if f != wrong[0]})
    assert_nothing_lost(app)


@pytest.mark.slow
def test_a_redis_that_hangs_answers_503_within_a_bound_then_recovers_by_itself(
    app: Flask, auth: Auth, own_redis: RedisServer
) -> None:
    """Redis accepts connections and never answers: session calls 503 in bounded time,
    token calls work; once it carries on, the same session, sign-in and uploads work."""
    auth.register()
    token = auth.token()
    script = app.test_client()  # a token, no cookie
    visitor = app.test_client()
    bound = hung_redis_bound(app)

    # Each call on a thread, so a call that hangs fails the test rather than stalling it;
    # the pool outlives the freeze, so its threads end once Redis carries on.
    with ThreadPoolExecutor(max_workers=1) as pool, own_redis.hung():

        def within_bound(call: Any) -> Any:
            try:
                return pool.submit(call).result(timeout=bound)
            except FutureTimeout:
                raise AssertionError(f"no answer within {bound}s: a hang") from None

        session_calls = {
            "me": lambda: auth.client.get("/api/auth/me"),
            "login": lambda: visitor.post(
                "/api/auth/login", json={"email": "admin@acme.test", "password": auth.password}
            ),
        }
        for name, call in session_calls.items():
            response = within_bound(call)
            assert response.status_code == 503, (name, response.data)
            assert response.get_json()["code"] == "service_unavailable", name

        listing = within_bound(lambda: script.get("/api/files", headers=bearer(token)))
        assert listing.status_code == 200
        during = text_bytes(4 * KiB, seed=400)
        uploaded = within_bound(lambda: upload_as(script, token, "during.txt", during))
        assert uploaded.status_code == 201, uploaded.get_json()
        assert uploaded.get_json()["status"] == "pending"

    # Redis carries on with its data: the same cookie is signed in, no restart needed.
    assert auth.client.get("/api/auth/me").status_code == 200
    assert auth.login().status_code == 200
    after = text_bytes(4 * KiB, seed=401)
    later = upload_as(script, token, "after.txt", after)
    assert later.status_code == 201
    # A worker's run sweeps first: it queues the upload whose job may not have reached Redis.
    run_worker(app, burst=True)
    assert_all_ready(
        script,
        token,
        {uploaded.get_json()["file_id"]: during, later.get_json()["file_id"]: after},
    )
    assert_nothing_lost(app)


@pytest.mark.slow
def test_a_worker_asked_to_stop_while_redis_is_away_exits_within_ten_seconds(
    app: Flask, own_redis: RedisServer, tmp_path: Path
) -> None:
    """podman-compose's `down` stops Redis and Coffer at once: a worker whose Redis is gone
    still stops on SIGTERM at once, not when supervisord SIGKILLs it a minute later."""
    redis = Redis.from_url(own_redis.url)
    with managed(["worker"], process_env(app), tmp_path / "worker.log") as worker:
        # Idle in RQ's loop: its scheduler started, its signal handlers on.
        wait_for(
            lambda: [w.get_state() for w in Worker.all(connection=redis)] == ["idle"],
            60,
            "the worker to wait for jobs",
        )
        own_redis.stop()
        # RQ's own loop has seen Redis go: it waits there to try again, its handlers on.
        wait_for(
            lambda: "could not connect to Redis" in worker.output(),
            60,
            "the worker to notice Redis is gone",
        )
        worker.popen.terminate()
        signalled = time.monotonic()
        try:
            status = worker.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            status = None
        stopped_in = time.monotonic() - signalled
        assert status == 0, worker.output()
        assert stopped_in < 10, f"stopped {stopped_in:.1f} s after SIGTERM"
    redis.close()
