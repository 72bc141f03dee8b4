"""The `webdav` scenario: a PROPFIND of Depth 1 of a folder of many files, and rclone
copying a tree of small files and one large file up to /dav/ and back, beside the same
bytes through the API."""

from __future__ import annotations

import base64
import math
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .client import BenchError, Client, MiB, large_upload, register, run_threads, small_upload
from .scenarios import (
    SEED,
    Run,
    percentile,
    seed_files,
    small_text,
    token_for,
    unseed_files,
    wait_settled,
)

Figures = dict[str, Any]
ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
# rclone's parallel transfers (its default), and the API's clients beside it.
TRANSFERS = 4
# Rounds of the large file's copies, rclone and the API taking turns; the best of each counts.
LARGE_ROUNDS = 3


def rclone_env(url: str, email: str, token: str, home: Path) -> dict[str, str]:
    """rclone's environment for a remote `coffer` on the WebDAV at `url`."""
    obscured = subprocess.run(
        ["rclone", "obscure", token], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        **os.environ,
        "HOME": str(home),
        "RCLONE_CONFIG": str(home / "rclone.conf"),
        "RCLONE_CONFIG_COFFER_TYPE": "webdav",
        "RCLONE_CONFIG_COFFER_URL": url,
        "RCLONE_CONFIG_COFFER_VENDOR": "other",
        "RCLONE_CONFIG_COFFER_USER": email,
        "RCLONE_CONFIG_COFFER_PASS": obscured,
    }


def rclone_copy(env: dict[str, str], source: str, target: str) -> float:
    """Seconds `rclone copy` takes (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["rclone", "copy", "--transfers", str(TRANSFERS), source, target],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"rclone copy {source} {target}: {done.stderr[-500:]}")
    return seconds


def propfind_p50(run: Run, identity: dict[str, Any], token: str) -> Figures:
    """p50 of a PROPFIND Depth 1 (allprop) of a top level of 10,000 seeded files."""
    count = 10_000
    organization = int(identity["organization_id"])
    user = int(identity["user_id"])
    newest = seed_files(run.database_url, organization, user, count)
    try:
        basic = base64.b64encode(f"{identity['email']}:{token}".encode()).decode()
        dav = Client(run.port, {"Authorization": f"Basic {basic}", "Depth": "1"})
        times: list[float] = []
        size = 0
        with run.profiler.record(run.label("webdav-propfind"), {"web": run.coffer.web_pid}):
            for attempt in range(3 + 20):
                started = time.perf_counter()
                answer = dav.request("PROPFIND", "/dav/", ALLPROP)
                if answer.status != 207:
                    raise BenchError(f"PROPFIND answered {answer.status}")
                if attempt >= 3:
                    times.append((time.perf_counter() - started) * 1000)
                size = len(answer.body)
        dav.close()
    finally:
        unseed_files(run.database_url, organization, newest, count)
    return {
        "dav_propfind_files": count,
        "dav_propfind_p50_ms": percentile(times, 0.5),
        "dav_propfind_p95_ms": percentile(times, 0.95),
        "dav_propfind_kib": size / 1024,
    }


def api_small(client: Client, files: list[tuple[str, bytes]], saved: Path) -> tuple[float, float]:
    """Seconds to upload, then to download into files under `saved` (as rclone saves them),
    these files through the API, TRANSFERS clients at once."""
    ids: list[str] = [""] * len(files)

    def up(index: int) -> None:
        own = client.clone()
        for number in range(index, len(files), TRANSFERS):
            name, data = files[number]
            ids[number] = small_upload(own, name, data)["file_id"]
        own.close()

    def down(index: int) -> None:
        own = client.clone()
        for number in range(index, len(files), TRANSFERS):
            with (saved / files[number][0]).open("wb") as sink:
                status, _length, _tail = own.drain(f"/api/files/{ids[number]}/download", sink=sink)
            if status != 200:
                raise BenchError(f"download answered {status}")
        own.close()

    started = time.perf_counter()
    run_threads(TRANSFERS, up, timeout=3600)
    up_s = time.perf_counter() - started
    # The API serves ready files only: downloads start once validation has run.
    wait_settled(client, timeout=600)
    started = time.perf_counter()
    run_threads(TRANSFERS, down, timeout=3600)
    return up_s, time.perf_counter() - started


def plain_gets(
    run: Run, client: Client, email: str, token: str, file_id: str, size_mb: int, work: Path
) -> tuple[float, float]:
    """The best seconds of three GETs of the large file over WebDAV (the file rclone put)
    and three of the API's download, taking turns, by the same kind of client saving to a
    file: the server's answer alone, without rclone's start and PROPFINDs."""
    basic = base64.b64encode(f"{email}:{token}".encode()).decode()
    dav = Client(run.port, {"Authorization": f"Basic {basic}"})
    best = {"dav": math.inf, "api": math.inf}
    try:
        for _round in range(3):
            for side, who, path in (
                ("dav", dav, "/dav/big0/big.bin"),
                ("api", client, f"/api/files/{file_id}/download"),
            ):
                started = time.perf_counter()
                with (work / "get.bin").open("wb") as sink:
                    status, length, _tail = who.drain(path, sink=sink)
                best[side] = min(best[side], time.perf_counter() - started)
                if status != 200 or length != size_mb * MiB:
                    raise BenchError(f"a GET of {path} answered {status}, {length} bytes")
    finally:
        dav.close()
        (work / "get.bin").unlink(missing_ok=True)
    return best["dav"], best["api"]


def settle(client: Client) -> None:
    """Before a timed round: the worker done with earlier uploads (it hashes every byte, on
    the same two cores) and the page cache's dirty pages on disk (their writeback would slow
    whichever round came next)."""
    wait_settled(client, timeout=600)
    os.sync()


def large_rounds(
    run: Run,
    client: Client,
    env: dict[str, str],
    big: Path,
    block: bytes,
    size_mb: int,
    work: Path,
) -> dict[str, Any]:
    """The best seconds of `LARGE_ROUNDS` rounds, taking turns, of rclone copying `big` up
    and of the API's multipart upload of the same bytes; then of rclone copying it back and
    of the API's download, each saved to a file. Each round starts settled (`settle`)."""
    best = {"dav_up": math.inf, "api_up": math.inf, "dav_down": math.inf, "api_down": math.inf}
    api_ids: list[str] = []
    for number in range(LARGE_ROUNDS):
        settle(client)
        up_s = rclone_copy(env, str(big.parent), f"coffer:big{number}")
        best["dav_up"] = min(best["dav_up"], up_s)
        settle(client)
        started = time.perf_counter()
        response, _ = large_upload(client, "/api/files/upload", "big.bin", size_mb * MiB, block)
        best["api_up"] = min(best["api_up"], time.perf_counter() - started)
        if response.status != 201:
            raise BenchError(f"the API's upload answered {response.status}")
        api_ids.append(response.json()["file_id"])
    file_id = api_ids[0]
    if client.json("GET", f"/api/files/{file_id}")["status"] != "ready":
        raise BenchError("the API's large upload was not made ready")
    for _number in range(LARGE_ROUNDS):
        back = work / "big-back"
        settle(client)
        best["dav_down"] = min(best["dav_down"], rclone_copy(env, "coffer:big0", str(back)))
        shutil.rmtree(back, ignore_errors=True)
        settle(client)
        started = time.perf_counter()
        with (work / "api-big.bin").open("wb") as sink:
            status, length, _tail = client.drain(f"/api/files/{file_id}/download", sink=sink)
        best["api_down"] = min(best["api_down"], time.perf_counter() - started)
        (work / "api-big.bin").unlink()
        if status != 200 or length != size_mb * MiB:
            raise BenchError(f"the API's download answered {status}, {length} bytes")
    return {**best, "file_id": file_id}


def webdav(run: Run) -> Figures:
    """PROPFIND p50 of a large folder; rclone copies up and back beside the API."""
    if shutil.which("rclone") is None:
        raise BenchError("rclone is not installed (Debian's `rclone`)")
    client, identity = register(run.port, "webdav")
    token = token_for(client, "webdav")
    figures: Figures = {}
    run.log("webdav: PROPFIND Depth 1 of a folder of seeded files")
    figures.update(propfind_p50(run, identity, token))
    work = Path(tempfile.mkdtemp(prefix="coffer-bench-dav-"))
    try:
        env = rclone_env(f"http://127.0.0.1:{run.port}/dav/", identity["email"], token, work)
        small_count = 1000
        tree = work / "tree"
        files = []
        for number in range(small_count):
            name = f"d{number % 10}/small-{number:04d}.txt"
            data = small_text(number)
            path = tree / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files.append((f"small-{number:04d}.txt", data))
        run.log(f"webdav: rclone copy of {small_count} small files up and back")
        with run.profiler.record(run.label("webdav-small"), {"web": run.coffer.web_pid}):
            up_s = rclone_copy(env, str(tree), "coffer:tree")
            down_s = rclone_copy(env, "coffer:tree", str(work / "tree-back"))
            (work / "api-back").mkdir()
            api_up_s, api_down_s = api_small(client, files, work / "api-back")
        figures.update(
            {
                "dav_small_files": small_count,
                "dav_small_up_rate": small_count / up_s,
                "dav_small_down_rate": small_count / down_s,
                "api_small_up_rate": small_count / api_up_s,
                "api_small_down_rate": small_count / api_down_s,
            }
        )
        size_mb = run.settings.huge_mb
        run.log(f"webdav: rclone copy of one {size_mb} MiB file up and back, beside the API")
        big = work / "big" / "big.bin"
        big.parent.mkdir()
        block = random.Random(SEED).randbytes(MiB)
        with big.open("wb") as out:
            for _ in range(size_mb):
                out.write(block)
            # On disk before any round: its writeback would otherwise slow the first round.
            out.flush()
            os.fsync(out.fileno())
        with run.profiler.record(run.label("webdav-large"), {"web": run.coffer.web_pid}):
            large = large_rounds(run, client, env, big, block, size_mb, work)
            dav_get_s, api_get_s = plain_gets(
                run, client, identity["email"], token, large["file_id"], size_mb, work
            )
        up_s, down_s = large["dav_up"], large["dav_down"]
        api_up_s, api_down_s = large["api_up"], large["api_down"]
        figures.update(
            {
                "dav_large_mb": size_mb,
                "dav_large_up_mibs": size_mb / up_s,
                "dav_large_down_mibs": size_mb / down_s,
                "api_large_up_mibs": size_mb / api_up_s,
                "api_large_down_mibs": size_mb / api_down_s,
                "dav_large_up_ratio": api_up_s / up_s,
                "dav_large_down_ratio": api_down_s / down_s,
                "dav_get_mibs": size_mb / dav_get_s,
                "api_get_mibs": size_mb / api_get_s,
                "dav_get_ratio": api_get_s / dav_get_s,
            }
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        client.close()
    return figures
