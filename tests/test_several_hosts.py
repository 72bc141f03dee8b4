"""Two complete instances of Coffer, as on two hosts: each its own folder and supervisord,
nothing shared but the database, Redis and one bucket. Uploads through one are validated
by either's worker, downloaded and deleted through the other, and neither host's disk
keeps any of it."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.database import fresh_database
from tests.support.deployment import Client, Deployment, process_env, supervisor
from tests.support.metrics import scrape_url, value
from tests.support.processes import RedisServer, free_port
from tests.support.s3 import SeaweedFS, keys_in, uploads_in

FILES = 12
KiB = 1024
# What supervisord itself keeps in an instance folder while it runs (pid file, socket).
SUPERVISOR_FILES = {"supervisord.pid", "supervisor.sock"}
# Where a host's processes keep their numbers for /metrics (app/metrics/).
METRICS = "instance/metrics/"


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The parts two hosts share: a migrated database and a Redis of this test's own.

    PostgreSQL when the run has one; otherwise a SQLite file in a folder of neither host,
    standing in for the database server."""
    server_dir = tmp_path / "db-server"
    server_dir.mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        with fresh_database(server_dir, "coffer_hosts") as database:
            yield database, redis.url
    finally:
        redis.stop()


def host(
    directory: Path, database: str, redis_url: str, s3: dict[str, str], prefix: str
) -> Deployment:
    """One host's deployment: its own folder, one worker, the shared parts, the bucket."""
    directory.mkdir()
    (directory / "instance").mkdir()
    port = free_port()
    env = process_env(directory, database, redis_url, port)
    env.update({**s3, "S3_PREFIX": prefix, "WORKERS": "1"})
    return Deployment(directory, database, redis_url, port, env)


def host_files(deployment: Deployment) -> set[str]:
    """Every file under the host's folder, relative to it."""
    return {
        path.relative_to(deployment.directory).as_posix()
        for path in deployment.directory.rglob("*")
        if path.is_file() or path.is_socket()
    }


def validated_by(output: str) -> set[str]:
    """The file ids whose validation a host's worker ended, from its log lines."""
    return set(re.findall(r"validation of file ([0-9a-f-]{36}) ended", output))


@pytest.mark.slow
def test_two_hosts_share_the_database_redis_and_one_bucket_and_nothing_else(
    shared: tuple[str, str], s3_server: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    database, redis_url = shared
    bucket = s3_bucket
    prefix = f"hosts-{uuid.uuid4().hex[:8]}/"
    s3 = s3_server.environment(bucket)
    first = host(tmp_path / "host-1", database, redis_url, s3, prefix)
    second = host(tmp_path / "host-2", database, redis_url, s3, prefix)
    # Every host signs with the same key (DEPLOY.md): a CSRF token from one holds on the other.
    second.env["SECRET_KEY"] = first.env["SECRET_KEY"]
    migrated = first.manage("db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr

    with ExitStack() as stack:
        one = stack.enter_context(supervisor(first))
        two = stack.enter_context(supervisor(second))
        alice = Client(first.base_url)
        account = alice.register("alice@hosts.test", "Two Hosts")
        org_id = account["organization_id"]
        sent: dict[str, bytes] = {}
        for n in range(FILES):
            data = f"file {n} of {FILES}\n".encode() * (n * 100 + 1)
            answer = alice.upload(f"note-{n}.txt", data)
            sent[answer["file_id"]] = data
            # One at a time: each idle worker waits its turn at the queue, so the two
            # hosts' workers take the jobs in turn.
            alice.wait_until(answer["file_id"], "ready")

        # The same session works on the other host: sessions live in the shared Redis.
        bob = Client(second.base_url)
        bob.opener = alice.opener
        bob.csrf = alice.csrf
        status, listing = bob.json("GET", "/api/files?limit=100")
        assert status == 200 and listing["total"] == FILES
        for file_id, data in sent.items():
            status, headers, body = bob.request("GET", f"/api/files/{file_id}/download")
            assert status == 200 and body == data, file_id
            etag = {k.lower(): v for k, v in headers.items()}["etag"]
            assert etag.strip('"') == hashlib.sha256(data).hexdigest(), headers

        by_first, by_second = validated_by(one.output()), validated_by(two.output())
        assert by_first | by_second == set(sent)
        assert by_first and by_second, "each host's worker validated some of the files"
        # Each host's /metrics adds up its own processes: its worker's jobs, nothing of the
        # other host's.
        for deployment, validated in ((first, by_first), (second, by_second)):
            numbers = scrape_url(deployment.base_url)
            ready = value(numbers, "coffer_validation_jobs_total", verdict="ready")
            assert ready == len(validated), deployment.base_url

        deleted = list(sent)[: FILES // 2]
        for file_id in deleted:
            assert bob.request("DELETE", f"/api/files/{file_id}")[0] == 204
        for file_id in deleted:
            assert alice.json("GET", f"/api/files/{file_id}")[0] == 404
        # Out of the trash too, through the other host: gone for good, bytes and quota.
        status, trash = alice.json("GET", "/api/trash?limit=100")
        assert status == 200 and {item["id"] for item in trash["items"]} == set(deleted)
        assert alice.request("DELETE", "/api/trash")[0] == 204
        status, org = alice.json("GET", "/api/org")
        kept = {f: d for f, d in sent.items() if f not in deleted}
        assert (org["file_count"], org["used_bytes"]) == (
            len(kept),
            sum(len(d) for d in kept.values()),
        )

        objects = keys_in(s3_server.client(), bucket, prefix)
        assert set(objects) == {
            f"{prefix}{org_id}/{file_id}/note-{list(sent).index(file_id)}.txt" for file_id in kept
        }
        assert uploads_in(s3_server.client(), bucket, prefix) == []
        for deployment in (first, second):
            # The host's own bookkeeping only: supervisord's files and the metric files of
            # its processes.
            left = {name for name in host_files(deployment) if not name.startswith(METRICS)}
            assert {Path(name).name for name in left} <= SUPERVISOR_FILES, left
        report = first.manage("storage", "check")
        assert report.returncode == 0, report.stdout + report.stderr
