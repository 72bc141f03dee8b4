"""The measured scenarios; each returns flat figures keyed as `bench.report` reads them."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import psutil
from sqlalchemy import create_engine, select, text

from app.config import DEFAULT_WEB_THREADS
from app.libc import READ_BUFFER
from app.storage.local import drop_cached
from tests.support.processes import free_port
from tests.support.s3 import SeaweedFS
from tests.support.traffic import mixed_traffic, unfinished

from .activity import activity
from .client import (
    BenchError,
    Client,
    MiB,
    delete_for_good,
    large_upload,
    register,
    run_threads,
    small_upload,
)
from .peer import PeerUnavailable, TusPeer
from .procs import ROOT, Coffer, Floor, PeakRSS, Profiler, driver_url

Figures = dict[str, Any]
FINAL = {"ready", "failed"}
PAGE_LIMIT = 20
# Fixed, so every run seeds the same rows and the table holds the same figures.
SEED = 20261123
# The seeded files: the i-th newest is this much older than the newest, and one in
# RARE_EVERY has the rare status the filtered listing is also timed with.
SEED_STEP_US = 1_000_037
RARE_EVERY = 1000
RARE_STATUS = "failed"
SEED_COLUMNS = (
    "id, filename, name_key, file_path, size, mime_type, sha256, status, error_message, "
    "bytes_stored, organization_id, uploaded_by, uploaded_at, processed_at, folder_id"
)
# Ids: hex of a multiplicative hash of i first (so they spread over the key space like
# uuid4s), the organization and i last (so they are unique). Folders' ids differ from
# files' in their variant digit (`a`, files `8`).
SQLITE_ID = (
    "printf('%08x-%04x-4%03x-{variant}%03x-%012x', (({i}) * 2654435761) % 4294967296, "
    ":org % 65536, (({i}) * 40503) % 4096, (({i}) * 7919) % 4096, {i})"
)
POSTGRESQL_ID = (
    "lpad(to_hex(mod(({i}) * 2654435761, 4294967296)), 8, '0') || '-' "
    "|| lpad(to_hex(mod(CAST(:org AS bigint), 65536)), 4, '0') || '-4' "
    "|| lpad(to_hex(mod(({i}) * 40503, 4096)), 3, '0') || '-{variant}' "
    "|| lpad(to_hex(mod(({i}) * 7919, 4096)), 3, '0') || '-' || lpad(to_hex({i}), 12, '0')"
)
SEED_SQLITE = """
INSERT INTO files ({columns})
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :last),
seeded AS (
    SELECT i, {id} AS id, {filename} AS filename, {folder} AS folder_id,
        :newest_us - i * :step AS us
    FROM seq
)
SELECT id, filename, filename, :org || '/' || id || '/' || filename, 1024, 'text/plain',
    printf('%064x', i),
    CASE WHEN i % :every = :every - 1 THEN :rare ELSE 'ready' END,
    CASE WHEN i % :every = :every - 1 THEN 'seeded failure' END,
    1, :org, :user,
    strftime('%Y-%m-%d %H:%M:%S', us / 1000000, 'unixepoch') || printf('.%06d', us % 1000000),
    strftime('%Y-%m-%d %H:%M:%S', (us + 5000) / 1000000, 'unixepoch')
        || printf('.%06d', (us + 5000) % 1000000),
    folder_id
FROM seeded
"""
SEED_POSTGRESQL = """
INSERT INTO files ({columns})
SELECT id, filename, filename, CAST(:org AS text) || '/' || id || '/' || filename, 1024,
    'text/plain',
    lpad(to_hex(i), 64, '0'),
    CASE WHEN mod(i, :every) = :every - 1 THEN :rare ELSE 'ready' END,
    CASE WHEN mod(i, :every) = :every - 1 THEN 'seeded failure' END,
    true, :org, :user, ts, ts + interval '5 milliseconds', folder_id
FROM (
    SELECT i, {id} AS id, {filename} AS filename, {folder} AS folder_id,
        CAST(:newest AS timestamp) - (i * :step) * interval '1 microsecond' AS ts
    FROM generate_series(CAST(0 AS bigint), CAST(:last AS bigint)) AS i
) AS seeded
"""
# The listing's names: seed-0000000.txt...
PLAIN_NAME = {
    "sqlite": "printf('seed-%07d.txt', i)",
    "postgresql": "'seed-' || lpad(CAST(i AS text), 7, '0') || '.txt'",
}
# With folders, names as people write them: `invoice-march-0123456.txt`, the first word by
# i % len(NAME_WORDS), the second by the next digits of i, so each pair of words names one
# file in len(NAME_WORDS) * len(NAME_MONTHS) (a search for a pair finds 1,000 of 1,000,000).
NAME_WORDS = (
    "report invoice photo scan contract budget minutes slides draft notes summary receipt "
    "letter memo plan review agenda manual brief quote order policy design sketch poster "
    "survey thesis resume ticket backup export import logo banner chart table list form "
    "recipe map"
).split()
NAME_MONTHS = (
    "january february march april may june july august september october november december "
    "spring summer autumn winter final old new copy signed scanned shared team client"
).split()
WORD_WIDTH = 9
WORDS_NAME = {
    "sqlite": (
        "printf('%s-%s-%07d.txt', rtrim(substr(:words, (i % :word_count) * :width + 1, :width)),"
        " rtrim(substr(:months, ((i / :word_count) % :month_count) * :width + 1, :width)), i)"
    ),
    "postgresql": (
        "rtrim(substr(CAST(:words AS text), CAST(mod(i, :word_count) * :width + 1 AS integer),"
        " :width)) || '-' || rtrim(substr(CAST(:months AS text), "
        "CAST(mod(i / :word_count, :month_count) * :width + 1 AS integer), :width)) || '-' "
        "|| lpad(CAST(i AS text), 7, '0') || '.txt'"
    ),
}
# The seeded folder of the i-th file: the big folder (number 0) holds the newest :big files,
# the others are dealt round the remaining folders.
FOLDER_NUMBER = "CASE WHEN i < :big THEN 0 ELSE 1 + (i - :big) % (:folders - 1) END"
# Folders: :tops of them at the top level (folder 0, the big one, among them), each of the
# others inside top-level folder j % :tops.
SEED_FOLDERS_SQLITE = """
INSERT INTO folders (id, organization_id, parent_id, name, name_key, created_by, created_at)
WITH RECURSIVE seq(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM seq WHERE j < :folders - 1)
SELECT {id}, :org, CASE WHEN j < :tops THEN NULL ELSE {parent} END,
    printf('Folder %05d', j), printf('folder %05d', j), :user, :created
FROM seq
"""
SEED_FOLDERS_POSTGRESQL = """
INSERT INTO folders (id, organization_id, parent_id, name, name_key, created_by, created_at)
SELECT {id}, :org, CASE WHEN j < :tops THEN NULL ELSE {parent} END,
    'Folder ' || lpad(CAST(j AS text), 5, '0'), 'folder ' || lpad(CAST(j AS text), 5, '0'),
    :user, CAST(:created AS timestamp)
FROM generate_series(CAST(0 AS bigint), CAST(:folders - 1 AS bigint)) AS j
"""


@dataclass(frozen=True)
class FolderLayout:
    """How `seed_files` spreads its files over folders it seeds too."""

    folders: int
    # Folder number 0 holds this many of the files (the newest).
    big: int
    # Folders at the top level; every other one is inside one of these.
    tops: int = 100

    def folder_id(self, organization_id: int, number: int) -> str:
        """The id the seeding gives folder `number` of this organization (as the SQL does)."""
        return (
            f"{(number * 2654435761) % 4294967296:08x}-{organization_id % 65536:04x}-"
            f"4{(number * 40503) % 4096:03x}-a{(number * 7919) % 4096:03x}-{number:012x}"
        )


def file_name(index: int) -> str:
    """The name the folders' seeding gives the i-th file (as the SQL does)."""
    word = NAME_WORDS[index % len(NAME_WORDS)]
    month = NAME_MONTHS[(index // len(NAME_WORDS)) % len(NAME_MONTHS)]
    return f"{word}-{month}-{index:07d}.txt"


def seed_statements(dialect: str, layout: FolderLayout | None) -> tuple[str, str | None]:
    """The files' INSERT ... SELECT and, with a layout, the folders' one before it."""
    files = SEED_POSTGRESQL if dialect == "postgresql" else SEED_SQLITE
    ids = POSTGRESQL_ID if dialect == "postgresql" else SQLITE_ID
    files_sql = files.format(
        columns=SEED_COLUMNS,
        id=ids.format(i="i", variant="8"),
        filename=WORDS_NAME[dialect] if layout else PLAIN_NAME[dialect],
        folder=ids.format(i=FOLDER_NUMBER, variant="a") if layout else "NULL",
    )
    if layout is None:
        return files_sql, None
    folders = SEED_FOLDERS_POSTGRESQL if dialect == "postgresql" else SEED_FOLDERS_SQLITE
    tops = "mod(j, :tops)" if dialect == "postgresql" else "j % :tops"
    folders_sql = folders.format(
        id=ids.format(i="j", variant="a"), parent=ids.format(i=tops, variant="a")
    )
    return files_sql, folders_sql


@dataclass(frozen=True)
class Settings:
    """Sizes and counts of one bench run (`--quick` shrinks them)."""

    large_mb: int = 200
    huge_mb: int = 1024
    repeats: int = 3
    huge_repeats: int = 2
    # Rounds of the resumable upload, each Coffer then the tus Node server.
    resumable_rounds: int = 3
    pipeline_files: int = 500
    pipeline_clients: int = 4
    listing_files: int = 1_000_000
    listing_samples: int = 200
    deep_page_samples: int = 50
    rps_requests: int = 250
    me_requests: int = 500
    quota_samples: int = 30
    web_threads: int = DEFAULT_WEB_THREADS
    load_clients: int = 32
    load_seconds: float = 60
    # The `threads` sweep: the mixed load for a while per WEB_THREADS x WORKERS.
    threads_seconds: float = 20
    threads_web: tuple[int, ...] = (4, 8, 16)
    threads_workers: tuple[int, ...] = (1, 2)
    migrate_files: int = 1000
    # The `folders` scenario: files seeded over folders, one folder holding `folders_big`.
    folders_files: int = 1_000_000
    folders_count: int = 10_000
    folders_big: int = 100_000
    folders_moves: int = 200
    folders_uploads: int = 200
    # The `zip` scenario: a folder of this many files of this size, zipped in rounds.
    zip_files: int = 1000
    zip_file_kib: int = 1024
    zip_rounds: int = 3
    # The `trash` scenario: files seeded into the trash, then purged by the operator's command.
    trash_files: int = 100_000
    # The `activity` scenario: uploads timed with and without the record (in rounds of
    # each), then the record's first pages with this many events.
    activity_uploads: int = 400
    activity_rounds: int = 10
    activity_events: int = 1_000_000
    activity_samples: int = 200


@dataclass
class Run:
    """What a scenario needs: the Coffer under test, the floor and the settings."""

    backend: str
    coffer: Coffer
    floor: Floor
    database_url: str
    settings: Settings
    profiler: Profiler
    # The S3 server and bucket: the floor of the s3 backend's uploads, the migrate target.
    s3: S3Target | None = None

    @property
    def port(self) -> int:
        """Coffer's port."""
        return self.coffer.port

    def label(self, name: str) -> str:
        """A file-name-safe label for a profile of this backend."""
        return f"{self.backend}-{name}"

    def log(self, message: str) -> None:
        """A progress line on stderr (the table goes to stdout)."""
        print(f"==> [{self.backend}] {message}", file=sys.stderr, flush=True)

    def restart(self, web_threads: int, workers: int) -> None:
        """Stop Coffer and start it again on a new port with these WEB_THREADS and WORKERS
        (same database, Redis and files)."""
        port = free_port()
        env = {
            **self.coffer.env,
            "WEB_THREADS": str(web_threads),
            "WORKERS": str(workers),
            "PORT": str(port),
        }
        self.coffer.stop()
        self.coffer = Coffer(self.coffer.directory, env, port)
        self.coffer.start()


@dataclass(frozen=True)
class S3Target:
    """A bucket on the bench's own SeaweedFS, and how to reach it."""

    server: SeaweedFS
    bucket: str

    def env(self, prefix: str) -> dict[str, str]:
        """The settings that point Coffer at this bucket under `prefix`."""
        return {**self.server.environment(self.bucket), "S3_PREFIX": prefix}


class RepeatedBytes(io.RawIOBase):
    """`size` bytes, repeats of `block`, read without ever holding them all."""

    def __init__(self, block: bytes, size: int) -> None:
        self.block, self.size, self.position = block, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.position)
        offset = self.position % len(self.block)
        done = 0
        while done < count:
            piece = self.block[offset : offset + count - done]
            buffer[done : done + len(piece)] = piece
            done += len(piece)
            offset = 0
        self.position += count
        return count


def boto3_floor(target: S3Target, size: int, block: bytes) -> float:
    """Seconds boto3's upload_fileobj takes to send `size` bytes to the same bucket."""
    client = target.server.client()
    key = f"floor/{uuid.uuid4().hex}"
    started = time.perf_counter()
    client.upload_fileobj(RepeatedBytes(block, size), target.bucket, key)
    seconds = time.perf_counter() - started
    client.delete_object(Bucket=target.bucket, Key=key)
    return seconds


# ---- small helpers -------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def parse_time(value: str) -> datetime:
    """Coffer's `...Z` timestamp as a naive UTC datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=None)


def utc_now() -> datetime:
    """Now in UTC, naive, as Coffer stores times."""
    return datetime.now(UTC).replace(tzinfo=None)


def small_text(index: int, size: int = 1024) -> bytes:
    """`size` bytes of plain text, different for each index."""
    line = f"coffer bench file {index:06d}: the quick brown fox jumps over the lazy dog\n"
    return (line * (size // len(line) + 1)).encode()[:size]


def cpu_seconds(pid: int) -> float:
    """CPU time a process and its reaped children (RQ's work horses) have used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def status_total(client: Client, status: str) -> int:
    """How many of the caller's organization's files have this status."""
    return int(client.json("GET", f"/api/files?status={status}&limit=1")["total"])


def wait_settled(client: Client, timeout: float, interval: float = 0.05) -> None:
    """Wait until the organization has no pending or processing file."""
    deadline = time.monotonic() + timeout
    while status_total(client, "pending") + status_total(client, "processing") > 0:
        if time.monotonic() > deadline:
            raise BenchError(f"files still not final after {timeout:.0f} s")
        time.sleep(interval)


def wait_file_final(client: Client, file_id: str, timeout: float) -> dict[str, Any]:
    """Poll one file's details until it is ready or failed; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        details = client.json("GET", f"/api/files/{file_id}")
        if details["status"] in FINAL:
            return details
        if time.monotonic() > deadline:
            raise BenchError(f"file {file_id} still {details['status']} after {timeout:.0f} s")
        time.sleep(0.05)


def latencies(client: Client, path: str, count: int, budget: float) -> list[float]:
    """Milliseconds of up to `count` sequential GETs of `path` (within `budget` seconds)."""
    for _ in range(3):  # warm-up: connection, caches, first-query plans
        client.json("GET", path)
    times: list[float] = []
    deadline = time.monotonic() + budget
    for _ in range(count):
        started = time.perf_counter()
        response = client.request("GET", path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise BenchError(f"GET {path} answered {response.status}")
        if time.monotonic() > deadline:
            break
    return times


def throughput(
    client: Client, path: str, clients: int, per_client: int, pid: int | None = None
) -> tuple[float, float]:
    """Requests per second of GET `path` from `clients` threads, each on its own connection,
    and the CPU milliseconds the server process `pid` spent per request (NaN without one).
    """

    def work(_index: int) -> tuple[float, float, int]:
        own = client.clone()
        try:
            for _ in range(3):
                own.request("GET", path)
            started = time.perf_counter()
            done = 0
            deadline = time.monotonic() + 120
            for _ in range(per_client):
                if own.request("GET", path).status != 200:
                    raise BenchError(f"GET {path} failed under load")
                done += 1
                if time.monotonic() > deadline:
                    break
            return started, time.perf_counter(), done
        finally:
            own.close()

    cpu = cpu_seconds(pid) if pid else math.nan
    spans = run_threads(clients, work, timeout=180)
    cpu = cpu_seconds(pid) - cpu if pid else math.nan
    elapsed = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    done = sum(done for _, _, done in spans)
    # The warm-up requests are in the CPU time too: a few per client, a rounding error.
    return done / elapsed, cpu / done * 1000


# ---- uploads against the floor -------------------------------------------------------


def uploads(run: Run) -> Figures:
    """Large uploads through Coffer beside the same bytes streamed by the floor."""
    settings = run.settings
    client, _ = register(run.port, "upload")
    floor_client = Client(run.floor.port)
    block = random.Random(SEED).randbytes(MiB)
    figures: Figures = {"storage": "s3" if run.backend == "s3" else "local"}
    try:
        for key, size_mb, repeats in (
            ("large", settings.large_mb, settings.repeats),
            ("huge", settings.huge_mb, settings.huge_repeats),
        ):
            size = size_mb * MiB
            floor_times: list[float] = []
            coffer_times: list[float] = []
            peaks: list[int] = []
            with run.profiler.record(run.label(f"upload-{key}"), {"web": run.coffer.web_pid}):
                for attempt in range(repeats):
                    run.log(f"upload {size_mb} MiB, {attempt + 1} of {repeats}")
                    if run.backend == "s3" and run.s3 is not None:
                        floor_times.append(boto3_floor(run.s3, size, block))
                    else:
                        started = time.perf_counter()
                        response, _ = large_upload(floor_client, "/upload", "big.bin", size, block)
                        floor_times.append(time.perf_counter() - started)
                        if response.status != 201:
                            raise BenchError(f"the floor answered {response.status}")
                        run.floor.clear()

                    with PeakRSS(run.coffer.web_pid) as rss:
                        started = time.perf_counter()
                        response, _ = large_upload(
                            client, "/api/files/upload", "big.bin", size, block
                        )
                        coffer_times.append(time.perf_counter() - started)
                    if response.status != 201:
                        raise BenchError(
                            f"Coffer answered {response.status}: {response.body[:300]!r}"
                        )
                    peaks.append(rss.peak)
                    # Validation hashes the file: let it finish before the next timing.
                    file_id = response.json()["file_id"]
                    wait_file_final(client, file_id, timeout=600)
                    delete_for_good(client, "files", file_id)
            # Best of the rounds: another process's disk or CPU use only ever slows one down.
            floor_s = min(floor_times)
            coffer_s = min(coffer_times)
            figures.update(
                {
                    f"{key}_mb": size_mb,
                    f"{key}_floor_s": floor_s,
                    f"{key}_coffer_s": coffer_s,
                    f"{key}_ratio": floor_s / coffer_s,
                    f"{key}_floor_mibs": size_mb / floor_s,
                    f"{key}_coffer_mibs": size_mb / coffer_s,
                    f"{key}_rss_mib": max(peaks) / MiB,
                }
            )
    finally:
        client.close()
        floor_client.close()
    return figures


# ---- small-file pipeline -------------------------------------------------------------


def pipeline(run: Run, clients: int) -> Figures:
    """Small uploads from `clients` threads until all are final, with one worker.

    Upload-to-ready latency is `processed_at - uploaded_at` read from each file's details
    once all are final (both stamped by Coffer, so no polling error).
    """
    settings = run.settings
    count = settings.pipeline_files
    client, _ = register(run.port, f"pipeline{clients}")

    def work(index: int) -> tuple[list[str], float, float, datetime]:
        own = client.clone()
        try:
            ids = []
            started = time.perf_counter()
            deadline = time.monotonic() + 300
            for number in range(index, count, clients):
                body = small_upload(own, f"small-{number:05d}.txt", small_text(number))
                ids.append(body["file_id"])
                if time.monotonic() > deadline:
                    raise BenchError("small uploads took over 300 s")
            return ids, started, time.perf_counter(), utc_now()
        finally:
            own.close()

    run.log(f"pipeline: {count} uploads of 1 KiB from {clients} client(s)")
    pids = {"web": run.coffer.web_pid, "worker": run.coffer.worker_pid}
    with run.profiler.record(run.label(f"pipeline-{clients}"), pids):
        web_cpu, worker_cpu = cpu_seconds(pids["web"]), cpu_seconds(pids["worker"])
        spans = run_threads(clients, work, timeout=330)
        # Taken before the polling below, which costs the web process too.
        web_cpu = cpu_seconds(pids["web"]) - web_cpu
        wait_settled(client, timeout=300 + count)
        worker_cpu = cpu_seconds(pids["worker"]) - worker_cpu
    started = min(span[1] for span in spans)
    ended = max(span[2] for span in spans)
    last_upload = max(span[3] for span in spans)

    ready_ms: list[float] = []
    failed = 0
    last_final = datetime.min
    for file_id in (file_id for span in spans for file_id in span[0]):
        details = client.json("GET", f"/api/files/{file_id}")
        processed = parse_time(details["processed_at"])
        last_final = max(last_final, processed)
        if details["status"] == "ready":
            ready_ms.append((processed - parse_time(details["uploaded_at"])).total_seconds() * 1000)
        else:
            failed += 1
    client.close()
    key = f"pipe{clients}"
    return {
        f"{key}_files": count,
        f"{key}_rate": count / (ended - started),
        # 0 when the last file was final before its upload's answer reached the client.
        f"{key}_final_after_s": max(0.0, (last_final - last_upload).total_seconds()),
        f"{key}_p50_ms": percentile(ready_ms, 0.5),
        f"{key}_p95_ms": percentile(ready_ms, 0.95),
        f"{key}_failed": failed,
        f"{key}_web_cpu_ms": web_cpu / count * 1000,
        f"{key}_worker_cpu_ms": worker_cpu / count * 1000,
    }


# ---- listing a large organization ----------------------------------------------------


def seed_files(
    database_url: str,
    organization_id: int,
    user_id: int,
    count: int,
    layout: FolderLayout | None = None,
) -> datetime:
    """Insert `count` 1 KiB file rows with one bulk INSERT ... SELECT; the database's
    triggers count them on the organization as they count every upload.

    The rows come from a generated series (a recursive CTE on SQLite, `generate_series` on
    PostgreSQL), so a million of them never pass through Python. The i-th newest was uploaded
    SEED_STEP_US * i microseconds before the newest, which this returns; one in RARE_EVERY is
    `failed` (the rare status of the filtered listing), the rest `ready`. Ids are the same
    every run for the same organization, spread over the key space like random ones. The rows
    have no bytes on disk: listing never reads them. PostgreSQL then gets the VACUUM ANALYZE
    its autovacuum would run within a minute of such an insert.

    With a `layout`, its folders are inserted first (one more INSERT ... SELECT) and the
    files are dealt into them, named as `file_name` says (unique in each folder); without,
    every file is at the top level, named `seed-<i>.txt`.
    """

    # Older than anything the run uploads, so these are the organization's oldest files.
    newest = (utc_now() - timedelta(days=1)).replace(microsecond=0)
    params: dict[str, Any] = {
        "org": organization_id,
        "user": user_id,
        "last": count - 1,
        "step": SEED_STEP_US,
        "every": RARE_EVERY,
        "rare": RARE_STATUS,
    }
    if layout is not None:
        params.update(
            {
                "folders": layout.folders,
                "big": layout.big,
                "tops": layout.tops,
                "created": newest.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "words": "".join(word.ljust(WORD_WIDTH) for word in NAME_WORDS),
                "word_count": len(NAME_WORDS),
                "months": "".join(word.ljust(WORD_WIDTH) for word in NAME_MONTHS),
                "month_count": len(NAME_MONTHS),
                "width": WORD_WIDTH,
            }
        )
    engine = create_engine(driver_url(database_url))
    postgresql = engine.dialect.name == "postgresql"
    statement, folders_statement = seed_statements(engine.dialect.name, layout)
    if postgresql:
        params["newest"] = newest
    else:
        params["newest_us"] = int((newest - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    try:
        with engine.begin() as conn:
            if folders_statement is not None and layout is not None:
                made = conn.execute(text(folders_statement), params).rowcount
                if made != layout.folders:
                    raise BenchError(f"the seeding made {made} folders, not {layout.folders}")
            inserted = conn.execute(text(statement), params).rowcount
            if inserted != count:
                raise BenchError(f"the seeding inserted {inserted} rows, not {count}")
        if postgresql:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE files"))
                if layout is not None:
                    conn.execute(text("VACUUM ANALYZE folders"))
    finally:
        engine.dispose()
    return newest


def unseed_files(
    database_url: str,
    organization_id: int,
    newest: datetime,
    count: int,
    layout: FolderLayout | None = None,
) -> None:
    """Delete the files `seed_files` inserted (all uploaded at `newest` or before; the
    triggers take them off the counters), and its folders with a `layout` (which must hold
    no other file by then): they have no bytes, which `storage migrate` would find missing."""
    from app.models import File, Folder

    files = File.__table__
    folders = Folder.__table__
    engine = create_engine(driver_url(database_url))
    try:
        with engine.begin() as conn:
            deleted = conn.execute(
                files.delete().where(
                    files.c.organization_id == organization_id, files.c.uploaded_at <= newest
                )
            ).rowcount
            if deleted != count:
                raise BenchError(f"{deleted} seeded files deleted, not {count}")
            if layout is not None:
                # One statement: the parent links are checked at its end.
                removed = conn.execute(
                    folders.delete().where(folders.c.organization_id == organization_id)
                ).rowcount
                if removed != layout.folders:
                    raise BenchError(f"{removed} seeded folders deleted, not {layout.folders}")
    finally:
        engine.dispose()


def seeded_id(database_url: str, organization_id: int, uploaded_at: datetime) -> str:
    """The id of the seeded file of this organization uploaded at `uploaded_at`."""
    from app.models import File

    files = File.__table__
    engine = create_engine(driver_url(database_url))
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(files.c.id).where(
                    files.c.organization_id == organization_id, files.c.uploaded_at == uploaded_at
                )
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    if found is None:
        raise BenchError(f"no seeded file uploaded at {uploaded_at}")
    return str(found)


def listing(run: Run) -> tuple[Figures, Client, Callable[[], None]]:
    """First page and a page near the end (by page and by cursor) of a seeded organization.

    Returns the figures, a client of that organization for the quota scenario, and what
    deletes the seeded files once it has run.
    """
    from app.files.listing import encode_cursor

    settings = run.settings
    count = settings.listing_files
    client, identity = register(run.port, "listing")
    run.log(f"listing: seeding {count:,} files")
    started = time.perf_counter()
    organization_id = identity["organization_id"]
    newest = seed_files(run.database_url, organization_id, identity["user_id"], count)
    seed_s = time.perf_counter() - started
    run.log(f"listing: seeded in {seed_s:.1f} s")

    def seeded_at(index: int) -> datetime:
        return newest - timedelta(microseconds=index * SEED_STEP_US)

    pages = math.ceil(count / PAGE_LIMIT)
    deep_page = max(1, pages - 1)
    offset = (deep_page - 1) * PAGE_LIMIT
    first_path = f"/api/files?limit={PAGE_LIMIT}"
    page_path = f"/api/files?limit={PAGE_LIMIT}&page={deep_page}"
    ready_path = f"/api/files?limit={PAGE_LIMIT}&status=ready"
    rare_path = f"/api/files?limit={PAGE_LIMIT}&status={RARE_STATUS}"
    cursor_path = first_path
    if offset:
        after_time = seeded_at(offset - 1)
        after_id = seeded_id(run.database_url, organization_id, after_time)
        cursor = encode_cursor(SimpleNamespace(uploaded_at=after_time, id=after_id))  # type: ignore[arg-type]
        cursor_path = f"/api/files?limit={PAGE_LIMIT}&cursor={cursor}"
    rare_count = count // RARE_EVERY

    first = client.json("GET", first_path)
    if first["total"] != count:
        raise BenchError(f"listing total is {first['total']}, not the {count} seeded")
    by_page = client.json("GET", page_path)
    by_cursor = client.json("GET", cursor_path)
    expected_id = seeded_id(run.database_url, organization_id, seeded_at(offset))
    for name, body in (("page", by_page), ("cursor", by_cursor)):
        if not body["files"] or body["files"][0]["id"] != expected_id:
            raise BenchError(f"the page near the end by {name} does not start where expected")
    for status, path, total in (
        ("ready", ready_path, count - rare_count),
        (RARE_STATUS, rare_path, rare_count),
    ):
        body = client.json("GET", path)
        if body["total"] != total or any(f["status"] != status for f in body["files"]):
            raise BenchError(f"?status={status} listed {body['total']} files, not {total}")

    run.log(f"listing: timing first page, page {deep_page}, its cursor and ?status=")
    with run.profiler.record(run.label("listing"), {"web": run.coffer.web_pid}):
        first_ms = latencies(client, first_path, settings.listing_samples, budget=120)
        page_ms = latencies(client, page_path, settings.deep_page_samples, budget=120)
        cursor_ms = latencies(client, cursor_path, settings.listing_samples, budget=120)
        ready_ms = latencies(client, ready_path, settings.listing_samples, budget=120)
        rare_ms = latencies(client, rare_path, settings.listing_samples, budget=120)
        rps, _ = throughput(client, first_path, 4, settings.rps_requests)
    first_p50 = percentile(first_ms, 0.5)
    return (
        {
            "list_files": count,
            "list_seed_s": seed_s,
            "list_deep_page": deep_page,
            "list_first_p50": first_p50,
            "list_first_p95": percentile(first_ms, 0.95),
            "list_page_p50": percentile(page_ms, 0.5),
            "list_page_p95": percentile(page_ms, 0.95),
            "list_cursor_p50": percentile(cursor_ms, 0.5),
            "list_cursor_p95": percentile(cursor_ms, 0.95),
            "list_page_ratio": percentile(page_ms, 0.5) / first_p50,
            "list_cursor_ratio": percentile(cursor_ms, 0.5) / first_p50,
            "list_cursor_offered": "next_cursor" in first and bool(first["next_cursor"]),
            "list_ready_p50": percentile(ready_ms, 0.5),
            "list_ready_p95": percentile(ready_ms, 0.95),
            "list_rare_files": rare_count,
            "list_rare_p50": percentile(rare_ms, 0.5),
            "list_rare_p95": percentile(rare_ms, 0.95),
            "list_rps": rps,
        },
        client,
        lambda: unseed_files(run.database_url, organization_id, newest, count),
    )


# ---- quota and usage do not grow with the files table --------------------------------


def quota(run: Run, full: Client) -> Figures:
    """Upload and GET /api/org latency in the seeded organization beside an empty one.

    The two organizations take turns request by request, so drift in the machine's load
    falls on both alike.
    """
    samples = run.settings.quota_samples
    empty, _ = register(run.port, "quota")
    clients = {"full": full, "empty": empty}
    org_ms: dict[str, list[float]] = {key: [] for key in clients}
    upload_ms: dict[str, list[float]] = {key: [] for key in clients}
    run.log("quota: uploads and usage in the full organization and an empty one")
    try:
        with run.profiler.record(run.label("quota"), {"web": run.coffer.web_pid}):
            for client in clients.values():
                client.json("GET", "/api/org")
            deadline = time.monotonic() + 120
            for number in range(samples):
                for key, client in clients.items():
                    started = time.perf_counter()
                    client.json("GET", "/api/org")
                    org_ms[key].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    small_upload(client, f"quota-{number:04d}.txt", small_text(number))
                    upload_ms[key].append((time.perf_counter() - started) * 1000)
                if time.monotonic() > deadline:
                    break
        for client in clients.values():
            wait_settled(client, timeout=300)
    finally:
        empty.close()
    figures: Figures = {}
    for key in clients:
        figures[f"quota_org_{key}_p50"] = percentile(org_ms[key], 0.5)
        figures[f"quota_upload_{key}_p50"] = percentile(upload_ms[key], 0.5)
    return figures


# ---- folders, names and search at 1,000,000 files ------------------------------------

# The search of the `folders` scenario: two words of the seeded names, which name one file
# in len(NAME_WORDS) * len(NAME_MONTHS).
SEARCH_TEXT = "invoice-march"


def seeded_file_id(organization_id: int, index: int) -> str:
    """The id `seed_files` gives the i-th file of this organization (as its SQL does)."""
    return (
        f"{(index * 2654435761) % 4294967296:08x}-{organization_id % 65536:04x}-"
        f"4{(index * 40503) % 4096:03x}-8{(index * 7919) % 4096:03x}-{index:012x}"
    )


def alternating(
    run: Run, samples: int, actions: dict[str, Callable[[int], None]], budget: float = 120
) -> dict[str, list[float]]:
    """Milliseconds of each action, the actions taking turns sample by sample, so drift in
    the machine's load falls on all alike."""
    times: dict[str, list[float]] = {key: [] for key in actions}
    deadline = time.monotonic() + budget
    for number in range(samples):
        for key, action in actions.items():
            started = time.perf_counter()
            action(number)
            times[key].append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    return times


def folders(run: Run) -> Figures:
    """An organization of files seeded over folders, one of them big: name search, the big
    folder by name (first page and a deep cursor page), moving it, and an upload into it
    beside one into an empty organization. The seeded rows are deleted at the end."""
    from app.files.listing import Filters, Sort, encode_cursor
    from app.files.listing import Order as ListOrder

    settings = run.settings
    count, big = settings.folders_files, settings.folders_big
    layout = FolderLayout(folders=settings.folders_count, big=big)
    client, identity = register(run.port, "folders")
    empty, _ = register(run.port, "folders-empty")
    organization_id = identity["organization_id"]
    run.log(f"folders: seeding {count:,} files in {layout.folders:,} folders")
    started = time.perf_counter()
    newest = seed_files(run.database_url, organization_id, identity["user_id"], count, layout)
    seed_s = time.perf_counter() - started
    run.log(f"folders: seeded in {seed_s:.1f} s")
    big_id = layout.folder_id(organization_id, 0)
    other_id = layout.folder_id(organization_id, 1)
    uploaded: list[str] = []
    try:
        # What each request must answer, checked once before timing.
        search_path = f"/api/files?limit={PAGE_LIMIT}&q={SEARCH_TEXT}"
        found = client.json("GET", search_path)
        matching = [i for i in range(count) if SEARCH_TEXT in file_name(i)]
        names = [f["filename"] for f in found["files"]]
        if names != [file_name(i) for i in matching[:PAGE_LIMIT]] or bool(
            found.get("next_cursor")
        ) != (len(matching) > PAGE_LIMIT):
            raise BenchError(f"the search for {SEARCH_TEXT!r} found {names[:3]}...")
        matches = len(matching)

        by_name = sorted(range(big), key=file_name)
        base = f"/api/files?limit={PAGE_LIMIT}&folder_id={big_id}&sort=name&order=asc"
        first = client.json("GET", base)
        if [f["filename"] for f in first["files"]] != [file_name(i) for i in by_name[:20]]:
            raise BenchError("the big folder's first page by name is not its first names")
        # The next-to-last page: after the row just before it, by Coffer's own cursor.
        at = max(0, big - 2 * PAGE_LIMIT)
        cursor_path = base
        if at:
            before = by_name[at - 1]
            filters = Filters(folder_id=big_id, sort=Sort.NAME, order=ListOrder.ASC)
            row = SimpleNamespace(
                name_key=file_name(before), id=seeded_file_id(organization_id, before)
            )
            cursor_path = f"{base}&cursor={encode_cursor(row, filters)}"  # type: ignore[arg-type]
        deep = client.json("GET", cursor_path)
        if not deep["files"] or deep["files"][0]["filename"] != file_name(by_name[at]):
            raise BenchError("the big folder's deep page by cursor does not start as expected")

        run.log("folders: timing the search, the big folder's pages by name and its moves")
        with run.profiler.record(run.label("folders"), {"web": run.coffer.web_pid}):
            search_ms = latencies(client, search_path, settings.listing_samples, budget=120)
            first_ms = latencies(client, base, settings.listing_samples, budget=120)
            deep_ms = latencies(client, cursor_path, settings.listing_samples, budget=120)

            def move(target: str) -> Callable[[int], None]:
                def action(_number: int) -> None:
                    client.json("PATCH", f"/api/folders/{big_id}", {"parent_id": target})

                return action

            moves = alternating(
                run, settings.folders_moves, {"in": move(other_id), "back": move("root")}
            )

            def into_big(number: int) -> None:
                fields = {"folder_id": big_id}
                body = small_upload(client, f"upload-{number:04d}.txt", small_text(number), fields)
                uploaded.append(body["file_id"])

            def into_empty(number: int) -> None:
                small_upload(empty, f"upload-{number:04d}.txt", small_text(number))

            upload_ms = alternating(
                run, settings.folders_uploads, {"big": into_big, "empty": into_empty}
            )
        if client.json("GET", f"/api/folders/{big_id}")["parent_id"] not in {None, "root"}:
            raise BenchError("the big folder did not end at the top level")
        for own in (client, empty):
            wait_settled(own, timeout=300)
        for file_id in uploaded:
            # Deleted for good (a DELETE moves to the trash), so the seeded folders can go.
            delete_for_good(client, "files", file_id)
        uploaded.clear()
    finally:
        client.close()
        empty.close()
        if not uploaded:
            started = time.perf_counter()
            unseed_files(run.database_url, organization_id, newest, count, layout)
            run.log(f"folders: seeded rows deleted in {time.perf_counter() - started:.1f} s")
    move_ms = moves["in"] + moves["back"]
    upload_big, upload_empty = (percentile(upload_ms[k], 0.5) for k in ("big", "empty"))
    return {
        "folders_files": count,
        "folders_count": layout.folders,
        "folders_big": big,
        "folders_seed_s": seed_s,
        "folders_search_matches": matches,
        "folders_search_p50": percentile(search_ms, 0.5),
        "folders_search_p95": percentile(search_ms, 0.95),
        "folders_first_p50": percentile(first_ms, 0.5),
        "folders_first_p95": percentile(first_ms, 0.95),
        "folders_deep_p50": percentile(deep_ms, 0.5),
        "folders_deep_p95": percentile(deep_ms, 0.95),
        "folders_move_p50": percentile(move_ms, 0.5),
        "folders_move_p95": percentile(move_ms, 0.95),
        "folders_upload_big_p50": upload_big,
        "folders_upload_empty_p50": upload_empty,
        "folders_upload_ratio": upload_big / upload_empty,
    }


# ---- a folder of 1 GiB as a zip ------------------------------------------------------

# The end of a zip's central directory, in the last bytes of every zip.
ZIP_END = b"PK\x05\x06"


def zip_download(run: Run) -> Figures:
    """A folder of many 1 MiB files downloaded as a zip, beside the same number of bytes
    downloaded as one file; rounds alternate, the best of each is kept. The web process's
    peak RSS is sampled during each zip."""
    settings = run.settings
    count, size = settings.zip_files, settings.zip_file_kib * 1024
    total = count * size
    client, _ = register(run.port, "zip")
    block = random.Random(SEED).randbytes(size)
    folder = client.json("POST", "/api/folders", {"name": "zipped"}, expect=201)["id"]
    run.log(f"zip: uploading {count} files of {size // 1024} KiB into a folder")
    clients = 4

    def work(index: int) -> None:
        own = client.clone()
        try:
            for number in range(index, count, clients):
                # Each file its own bytes: the number at the front.
                data = number.to_bytes(8, "big") + block[8:]
                small_upload(
                    own,
                    f"part-{number:04d}.bin",
                    data,
                    {"folder_id": folder},
                    "application/octet-stream",
                )
        finally:
            own.close()

    large_id: str | None = None
    try:
        run_threads(clients, work, timeout=1800)
        run.log(f"zip: uploading one file of {total / MiB:,.0f} MiB")
        # A new connection: waitress closes one idle for as long as the uploads took, and a
        # streamed body cannot be sent again.
        client.close()
        response, _ = large_upload(client, "/api/files/upload", "whole.bin", total, block)
        if response.status != 201:
            raise BenchError(f"the large upload answered {response.status}")
        large_id = response.json()["file_id"]
        wait_settled(client, timeout=1200)
        # The zip holds ready files only: every one must be.
        if (ready := status_total(client, "ready")) != count + 1:
            raise BenchError(f"zip: {ready} files ready, not {count + 1}")

        zip_s: list[float] = []
        file_s: list[float] = []
        peaks: list[int] = []
        # The web's resident set as each zip starts: the peak's baseline.
        starts: list[int] = []
        zip_bytes = 0
        for number in range(1, settings.zip_rounds + 1):
            run.log(f"zip: round {number} of {settings.zip_rounds}, the file then the zip")
            started = time.perf_counter()
            status, length, _ = client.drain(f"/api/files/{large_id}/download")
            file_s.append(time.perf_counter() - started)
            if status != 200 or length != total:
                raise BenchError(f"the file's download answered {status} with {length} bytes")
            profiled = run.profiler.record(run.label(f"zip-{number}"), {"web": run.coffer.web_pid})
            with profiled, PeakRSS(run.coffer.web_pid) as rss:
                starts.append(rss.peak)
                started = time.perf_counter()
                status, zip_bytes, tail = client.drain(f"/api/folders/{folder}/download")
                zip_s.append(time.perf_counter() - started)
            peaks.append(rss.peak)
            if status != 200 or zip_bytes < total or ZIP_END not in tail:
                raise BenchError(f"the zip answered {status} with {zip_bytes} bytes")
    finally:
        try:
            if large_id is not None:
                delete_for_good(client, "files", large_id)
            delete_for_good(client, "folders", folder)
        finally:
            client.close()
    best_zip, best_file = min(zip_s), min(file_s)
    return {
        "zip_files": count,
        "zip_mib": total / MiB,
        "zip_bytes": zip_bytes,
        "zip_s": best_zip,
        "zip_file_s": best_file,
        "zip_mibs": total / MiB / best_zip,
        "zip_file_mibs": total / MiB / best_file,
        "zip_ratio": best_file / best_zip,
        "zip_seconds": zip_s,
        "zip_file_seconds": file_s,
        "zip_rss_mib": max(peaks) / MiB,
        "zip_rss_start_mib": min(starts) / MiB,
    }


# ---- a cheap authenticated GET against a bare Flask route ----------------------------


def me(run: Run) -> Figures:
    """Requests per second of GET /api/auth/me by session cookie and by API token, beside
    the floor's bare Flask route; the three take turns round by round."""
    settings = run.settings
    client, _ = register(run.port, "me")
    # The token's own client: no cookie, only `Authorization: Bearer`.
    by_token = Client(run.port, {"Authorization": f"Bearer {token_for(client, 'me')}"})
    floor_client = Client(run.floor.port)
    clients = 4
    rounds: dict[str, list[tuple[float, float]]] = {"bare": [], "me": [], "me_token": []}
    run.log(f"GET /api/auth/me by cookie and by token, and the bare route, {clients} clients")
    try:
        with run.profiler.record(run.label("me"), {"web": run.coffer.web_pid}):
            for _ in range(settings.repeats):
                rounds["bare"].append(
                    throughput(floor_client, "/me", clients, settings.me_requests, run.floor.pid)
                )
                for key, own in (("me", client), ("me_token", by_token)):
                    rounds[key].append(
                        throughput(
                            own, "/api/auth/me", clients, settings.me_requests, run.coffer.web_pid
                        )
                    )
    finally:
        client.close()
        by_token.close()
        floor_client.close()
    # Best of the rounds: noise on a shared machine only ever slows a round down.
    best = {key: max(rps for rps, _ in values) for key, values in rounds.items()}
    figures: Figures = {}
    for key, values in rounds.items():
        figures[f"{key}_rps"] = best[key]
        figures[f"{key}_cpu_ms"] = min(cpu for _, cpu in values)
    figures["me_ratio"] = best["me"] / best["bare"]
    figures["me_token_ratio"] = best["me_token"] / best["bare"]
    return figures


def warm_up(run: Run) -> None:
    """A few uploads through the whole pipeline, so first-use costs stay out of the figures."""
    client, _ = register(run.port, "warmup")
    try:
        for number in range(5):
            small_upload(client, f"warm-{number}.txt", small_text(number))
        wait_settled(client, timeout=120)
    finally:
        client.close()


# ---- resumable upload ----------------------------------------------------------------

RESUMABLE_CHUNK = 8 * MiB
# Throughput is reported in MB/s of 10^6 bytes, as the figures are.
MB = 1_000_000
TUS = {"Tus-Resumable": "1.0.0"}
# The peer's FileStore writes to local disk: beside Coffer's S3 storage it measures nothing.
PEER_BACKENDS = {"sqlite", "postgresql"}


def tus_upload(client: Client, collection: str, size: int, chunk: bytes) -> tuple[str, float]:
    """The bench's tus client, the same for Coffer and the Node server: create an upload of
    `size` bytes at `collection`, then PATCH it `len(chunk)` bytes at a time, each PATCH sent
    after the previous one's 204 (as tus-js-client does). Returns the upload's path and the
    seconds from the creation request to the last 204."""
    name = base64.b64encode(b"big.bin").decode()
    started = time.perf_counter()
    created = client.request(
        "POST",
        collection,
        None,
        {**TUS, "Upload-Length": str(size), "Upload-Metadata": f"filename {name}"},
    )
    if created.status != 201:
        raise BenchError(f"creation answered {created.status}: {created.body[:200]!r}")
    # Coffer answers a path, the Node server an absolute URL: both are on this connection.
    location = urlsplit(created.headers["Location"]).path
    offset = 0
    while offset < size:
        piece = chunk[: min(len(chunk), size - offset)]
        answer = client.request(
            "PATCH",
            location,
            piece,
            {
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        if answer.status != 204:
            raise BenchError(f"PATCH answered {answer.status}: {answer.body[:200]!r}")
        offset += len(piece)
    return location, time.perf_counter() - started


def synced_writes(directory: Path, size: int, chunk: bytes) -> float:
    """The disk's own pace for durable PATCHes: seconds to write `size` bytes to a new file
    in `directory`, `len(chunk)` at a time, each step fsynced and then dropped from the page
    cache as Coffer's local storage does (without its writeback hints, which move the figure
    by about a tenth either way). No network, hash or database: the floor of a server that
    makes each PATCH durable before its 204, on this disk."""
    path = directory / f"synced-{uuid.uuid4().hex}.bin"
    view = memoryview(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        started = time.perf_counter()
        offset = 0
        while offset < size:
            step = min(len(chunk), size - offset)
            for start in range(0, step, READ_BUFFER):
                os.write(fd, view[start : min(step, start + READ_BUFFER)])
            os.fsync(fd)
            drop_cached(fd, offset, step)
            offset += step
        return time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()


def start_peer(run: Run) -> tuple[TusPeer | None, str | None]:
    """The tus Node server for this backend, started; or None and why it is skipped."""
    if run.backend not in PEER_BACKENDS:
        return None, "skipped: the peer stores on local disk"
    peer = TusPeer(run.coffer.directory / "tus-peer" / "files")
    try:
        peer.start()
    except PeerUnavailable as exc:
        run.log(f"resumable: tus Node server skipped: {exc}")
        return None, f"skipped: {exc}"
    except BenchError:
        peer.stop()
        raise
    run.log(f"resumable: tus Node server (@tus/server) on port {peer.port}")
    return peer, None


def resumable(run: Run) -> Figures:
    """A huge file through /api/uploads in 8 MiB PATCHes, alternating round by round with the
    same client against the tus project's own Node server (@tus/server + @tus/file-store),
    and beside the same bytes as one multipart upload to Coffer and written to the disk
    alone in the same synced steps."""
    settings = run.settings
    rounds = settings.resumable_rounds
    client, _ = register(run.port, "resumable")
    block = random.Random(SEED).randbytes(MiB)
    size = settings.huge_mb * MiB
    chunk = (block * (RESUMABLE_CHUNK // MiB))[:RESUMABLE_CHUNK]
    times: list[float] = []
    peer_times: list[float] = []
    peaks: list[int] = []
    multipart_s: list[float] = []
    disk_times: list[float] = []
    peer, skipped = start_peer(run)
    try:
        for number in range(1, rounds + 1):
            run.log(f"resumable {settings.huge_mb} MiB, round {number} of {rounds}: Coffer")
            profiled = run.profiler.record(
                run.label(f"resumable-{number}"), {"web": run.coffer.web_pid}
            )
            with profiled, PeakRSS(run.coffer.web_pid) as rss:
                location, seconds = tus_upload(client, "/api/uploads", size, chunk)
            times.append(seconds)
            peaks.append(rss.peak)
            # The worker's hash of the finished file must not overlap the next timing.
            file_id = location.rsplit("/", 1)[-1]
            wait_file_final(client, file_id, timeout=600)
            delete_for_good(client, "files", file_id)
            if peer is not None:
                run.log(f"resumable {settings.huge_mb} MiB, round {number}: tus Node server")
                # Its own connection, without Coffer's cookie: the headers tus needs are
                # the same.
                peer_client = Client(peer.port)
                try:
                    _, seconds = tus_upload(peer_client, peer.path, size, chunk)
                finally:
                    peer_client.close()
                    peer.clear()
                peer_times.append(seconds)
                # Same disk, same steps, nothing else: the durable PATCH's floor this round.
                uploads = Path(run.coffer.env["UPLOAD_FOLDER"])
                disk_times.append(synced_writes(uploads, size, chunk))
            started = time.perf_counter()
            response, _ = large_upload(client, "/api/files/upload", "big.bin", size, block)
            multipart_s.append(time.perf_counter() - started)
            if response.status != 201:
                raise BenchError(f"the multipart upload answered {response.status}")
            file_id = response.json()["file_id"]
            wait_file_final(client, file_id, timeout=600)
            delete_for_good(client, "files", file_id)
    finally:
        client.close()
        if peer is not None:
            peer.stop()
    figures: Figures = {
        "resumable_s": min(times),
        "resumable_multipart_s": min(multipart_s),
        "resumable_ratio": min(multipart_s) / min(times),
        "resumable_rss_mib": max(peaks) / MiB,
        "resumable_mbps": [size / MB / seconds for seconds in times],
        "resumable_mbps_median": size / MB / statistics.median(times),
    }
    if skipped is not None:
        figures["resumable_peer_skipped"] = skipped
    if peer_times:
        figures["resumable_peer_mbps"] = [size / MB / seconds for seconds in peer_times]
        figures["resumable_peer_mbps_median"] = size / MB / statistics.median(peer_times)
        # Round by round, the Node server's time over Coffer's: Coffer's share of its speed.
        figures["resumable_peer_pair_ratios"] = [
            peer_s / coffer_s for coffer_s, peer_s in zip(times, peer_times, strict=True)
        ]
        figures["resumable_peer_ratio"] = (
            figures["resumable_mbps_median"] / figures["resumable_peer_mbps_median"]
        )
    if disk_times:
        figures["resumable_disk_mbps"] = [size / MB / seconds for seconds in disk_times]
        figures["resumable_disk_mbps_median"] = size / MB / statistics.median(disk_times)
    return figures


# ---- mixed load ----------------------------------------------------------------------


def token_for(client: Client, name: str = "load") -> str:
    """A new API token of the client's user (POST /api/tokens, by its session)."""
    body = json.dumps({"name": name}).encode()
    response = client.request("POST", "/api/tokens", body, {"Content-Type": "application/json"})
    if response.status != 201:
        raise BenchError(f"token creation answered {response.status}")
    return str(response.json()["token"])


def mixed_load(run: Run, clients: int, seconds: float, label: str) -> Figures:
    """`clients` threads of mixed traffic for `seconds` in two new organizations, by token,
    then the wait until every upload is final; figures keyed without a prefix."""
    tokens = []
    for name in (f"{label}-a", f"{label}-b"):
        client, _ = register(run.port, name)
        tokens.append(token_for(client))
        client.close()
    with run.profiler.record(run.label(label), {"web": run.coffer.web_pid}):
        traffic = mixed_traffic(run.port, tokens, clients, seconds=seconds)
    ended = time.monotonic()
    while unfinished(run.port, tokens):
        if time.monotonic() - ended > 300:
            raise BenchError("uploads of the load were not final 300 s after it ended")
        time.sleep(0.2)
    latencies = sorted(traffic.latencies())
    return {
        "requests": len(traffic.answers),
        "rps": len(traffic.answers) / seconds,
        "errors": len(traffic.server_errors()),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "final_after_s": time.monotonic() - ended,
    }


def load(run: Run) -> Figures:
    """Many clients of mixed traffic for a while: errors, p99 latency, time to settle."""
    settings = run.settings
    run.log(f"{settings.load_clients} clients of mixed traffic for {settings.load_seconds:.0f} s")
    figures = mixed_load(run, settings.load_clients, settings.load_seconds, "load")
    return {f"load_{key}": value for key, value in figures.items()}


def threads(run: Run) -> Figures:
    """The mixed load, briefly, under each WEB_THREADS x WORKERS of the sweep: Coffer is
    started again (same database and Redis) for each; it is left on the last one."""
    settings = run.settings
    figures: Figures = {}
    for web_threads in settings.threads_web:
        for workers in settings.threads_workers:
            run.log(f"threads: WEB_THREADS={web_threads}, WORKERS={workers}")
            run.restart(web_threads, workers)
            key = f"threads_{web_threads}x{workers}"
            label = f"threads-{web_threads}x{workers}"
            measured = mixed_load(run, settings.load_clients, settings.threads_seconds, label)
            figures.update({f"{key}_{name}": value for name, value in measured.items()})
    return figures


# ---- storage migrate -----------------------------------------------------------------


def migrate(run: Run) -> Figures:
    """`storage migrate --to s3` of this deployment's local files: seconds for N files."""
    if run.s3 is None or run.backend == "s3":
        return {}
    settings = run.settings
    client, _ = register(run.port, "migrate")
    run.log(f"uploading {settings.migrate_files} small files to migrate")
    try:
        for number in range(settings.migrate_files):
            small_upload(client, f"m-{number}.txt", small_text(number))
        wait_settled(client, timeout=600)
    finally:
        client.close()
    env = {**run.coffer.env, **run.s3.env(f"migrate-{uuid.uuid4().hex[:8]}/")}
    env["STORAGE_BACKEND"] = "local"
    run.log("storage migrate --to s3")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "storage", "migrate", "--to", "s3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"storage migrate failed: {done.stderr[-500:]}")
    stored = int(done.stdout.split("copied ", 1)[1].split(" ", 1)[0])
    return {"migrate_files": stored, "migrate_s": seconds}


TRASH_SEED = """
UPDATE files SET trashed_at = uploaded_at, trashed_by = uploaded_by, trash_root = id
WHERE organization_id = :org
"""


def trash_purge(run: Run) -> Figures:
    """`manage.py trash purge` of a trash of seeded items (rows; their bytes were never
    stored, so this is the database's share of a purge and the removal calls): items/s."""
    count = run.settings.trash_files
    client, identity = register(run.port, "trash")
    client.close()
    organization_id = identity["organization_id"]
    run.log(f"trash: seeding {count:,} trashed files")
    seed_files(run.database_url, organization_id, identity["user_id"], count)
    engine = create_engine(driver_url(run.database_url))
    try:
        with engine.begin() as conn:
            trashed = conn.execute(text(TRASH_SEED), {"org": organization_id}).rowcount
            name = conn.execute(
                text("SELECT name FROM organizations WHERE id = :org"), {"org": organization_id}
            ).scalar_one()
    finally:
        engine.dispose()
    if trashed != count:
        raise BenchError(f"the seeding trashed {trashed} rows, not {count}")
    run.log("trash purge")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "trash", "purge", "--org", name, "--older-than", "0"],
        cwd=ROOT,
        env=run.coffer.env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"trash purge failed: {done.stderr[-500:]}")
    # The worker's sweep finishes whatever the command has marked, so both may share the
    # work: what counts is that the trash is empty when the command ends.
    engine = create_engine(driver_url(run.database_url))
    try:
        with engine.begin() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM files WHERE organization_id = :org"),
                {"org": organization_id},
            ).scalar_one()
    finally:
        engine.dispose()
    if left:
        raise BenchError(f"trash purge left {left} of {count} items")
    return {"trash_items": count, "trash_s": seconds, "trash_rate": count / seconds}


PREVIEW_PHOTOS = 200


def preview_figures(run: Run) -> Figures:
    """Previews as a worker makes them (bench/previews.py, one fresh process per case):
    200 JPEGs of 12 MP (images/s), one of 100 MP and a 100-page PDF's first page (seconds),
    each with the process's peak RSS."""
    folder = Path(tempfile.gettempdir()) / "coffer-bench-previews"
    module = [sys.executable, "-m", "bench.previews", str(folder)]
    subprocess.run([*module, "inputs", str(PREVIEW_PHOTOS)], cwd=ROOT, check=True, timeout=3600)
    figures: Figures = {}
    for case in ("photos", "huge", "pdf"):
        done = subprocess.run(
            [*module, case], cwd=ROOT, check=True, capture_output=True, text=True, timeout=3600
        )
        measured = json.loads(done.stdout)
        figures[f"previews_{case}_s"] = measured["seconds"]
        figures[f"previews_{case}_peak_mib"] = measured["peak_mib"]
        run.log(f"previews {case}: {measured}")
    figures["previews_photos_per_s"] = PREVIEW_PHOTOS / figures["previews_photos_s"]
    return figures


def run_all(run: Run, only: set[str]) -> tuple[Figures, list[str]]:
    """Run the selected scenarios in a fixed order; figures and the errors met."""
    figures: Figures = {}
    errors: list[str] = []

    def attempt(name: str, action: Callable[[], Figures]) -> None:
        try:
            figures.update(action())
        except Exception as exc:  # noqa: BLE001 - one failed scenario must not stop the rest
            message = f"{run.backend} {name}: {type(exc).__name__}: {exc}"
            run.log(f"error: {message}")
            traceback.print_exc(file=sys.stderr)
            errors.append(message)

    warm_up(run)
    if "previews" in only:
        attempt("previews", lambda: preview_figures(run))
    if "upload" in only:
        attempt("upload", lambda: uploads(run))
    if "pipeline" in only:
        attempt("pipeline 1", lambda: pipeline(run, 1))
        attempt("pipeline 4", lambda: pipeline(run, run.settings.pipeline_clients))
    if "listing" in only:
        holder: list[tuple[Client, Callable[[], None]]] = []

        def listed() -> Figures:
            result, client, unseed = listing(run)
            holder.append((client, unseed))
            return result

        attempt("listing", listed)
        if holder:
            client, unseed = holder[0]
            attempt("quota", lambda: quota(run, client))
            client.close()

            def cleared() -> Figures:
                started = time.perf_counter()
                unseed()
                seconds = time.perf_counter() - started
                run.log(f"listing: seeded files deleted in {seconds:.1f} s")
                return {"list_unseed_s": seconds}

            attempt("listing cleanup", cleared)
    if "folders" in only:
        attempt("folders", lambda: folders(run))
    if "me" in only:
        attempt("me", lambda: me(run))
    if "resumable" in only:
        attempt("resumable", lambda: resumable(run))
    if "load" in only:
        attempt("load", lambda: load(run))
    if "migrate" in only:
        attempt("migrate", lambda: migrate(run))
    if "zip" in only:
        attempt("zip", lambda: zip_download(run))
    if "trash" in only:
        attempt("trash", lambda: trash_purge(run))
    if "activity" in only:
        attempt("activity", lambda: activity(run))
    if "webdav" in only:
        from .webdav import webdav

        attempt("webdav", lambda: webdav(run))
    # Last: it starts Coffer again under other settings.
    if "threads" in only:
        attempt("threads", lambda: threads(run))
    return figures, errors
