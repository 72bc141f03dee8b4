"""`python -m bench`: run Coffer's benchmark and print one table (see docs/PERFORMANCE.md)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import traceback
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from app.config import DEFAULT_WEB_THREADS, MiB
from app.multipart import MULTIPART_OVERHEAD
from tests.support import ROOT
from tests.support import VENV_BIN as BIN
from tests.support.processes import RedisServer, free_port
from tests.support.s3 import SeaweedFS

from .client import LOOPBACK
from .procs import Coffer, Floor, Profiler, database
from .report import render
from .scenarios import Run, S3Target, Settings, run_all

RESULTS = ROOT / "bench" / "results"
SCENARIO_NAMES = (
    "upload",
    "pipeline",
    "listing",
    "folders",
    "me",
    "resumable",
    "load",
    "migrate",
    "zip",
    "trash",
    "activity",
    "webdav",
    "previews",
    "threads",
)
# `threads` (the WEB_THREADS x WORKERS sweep, two minutes a database) runs only when named.
DEFAULT_SCENARIOS = tuple(name for name in SCENARIO_NAMES if name != "threads")
# The s3 column: SQLite for the rows, SeaweedFS for the bytes; its uploads' floor is boto3
# sending the same bytes to the same bucket.
S3_SCENARIOS = {"upload", "resumable", "zip"}
# Large enough that no scenario ever meets the quota.
QUOTA_MB = 10_000_000
QUICK = Settings(
    large_mb=20,
    huge_mb=64,
    repeats=1,
    huge_repeats=1,
    resumable_rounds=2,
    pipeline_files=100,
    load_seconds=10,
    migrate_files=100,
    folders_files=20_000,
    folders_count=200,
    folders_big=2_000,
    folders_moves=10,
    folders_uploads=10,
    zip_files=50,
    zip_rounds=1,
    trash_files=10_000,
    activity_uploads=80,
    activity_rounds=2,
    activity_events=20_000,
    activity_samples=20,
    listing_files=10_000,
    listing_samples=50,
    deep_page_samples=10,
    rps_requests=50,
    me_requests=100,
    quota_samples=10,
    threads_seconds=5,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a run of a minute")
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated: sqlite,postgresql,s3 (default: sqlite and s3, plus "
        "postgresql when DATABASE_URL is set; s3 is SQLite with the bytes on SeaweedFS)",
    )
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SCENARIOS),
        help="scenarios: " + ",".join(SCENARIO_NAMES) + " (default: all but threads)",
    )
    parser.add_argument("--large-mb", type=int, help="the large upload, MiB (200)")
    parser.add_argument("--huge-mb", type=int, help="the RSS upload, MiB (1024)")
    parser.add_argument("--repeats", type=int, help="timed rounds of the large upload (3)")
    parser.add_argument(
        "--resumable-rounds",
        type=int,
        help="rounds of the resumable upload, each Coffer then the tus Node server (3)",
    )
    parser.add_argument("--pipeline-files", type=int, help="small uploads per client count (500)")
    parser.add_argument("--listing-files", type=int, help="files seeded for listing (1000000)")
    parser.add_argument("--samples", type=int, help="timed requests per listing figure (200)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record py-spy stacks of Coffer's processes per scenario into this folder "
        "(figures are then slower than usual)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder (logs, database) afterwards"
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """The run's sizes: the defaults or --quick's, with any explicit option over them."""
    settings = QUICK if args.quick else Settings()
    overrides = {
        "large_mb": args.large_mb,
        "huge_mb": args.huge_mb,
        "repeats": args.repeats,
        "resumable_rounds": args.resumable_rounds,
        "pipeline_files": args.pipeline_files,
        "listing_files": args.listing_files,
        "listing_samples": args.samples,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    # The same thread count `make run` gives waitress, for Coffer and the floor alike.
    return replace(settings, web_threads=int(os.environ.get("WEB_THREADS") or DEFAULT_WEB_THREADS))


def max_file_mb(settings: Settings) -> int:
    """MAX_FILE_SIZE_MB for the run: room for the largest upload."""
    return max(settings.large_mb, settings.huge_mb) + 16


def coffer_env(
    directory: Path,
    database_url: str,
    redis_url: str,
    port: int,
    settings: Settings,
    s3: S3Target | None = None,
) -> dict[str, str]:
    """The environment `make run` would give supervisord, pointed at the run's own parts."""
    env = dict(os.environ)
    env.update(
        {
            "APP_ENV": "development",
            "INSTANCE_PATH": str(directory / "instance"),
            "UPLOAD_FOLDER": str(directory / "uploads"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "HOST": LOOPBACK,
            "PORT": str(port),
            "WORKERS": "1",
            "WEB_THREADS": str(settings.web_threads),
            "MAX_FILE_SIZE_MB": str(max_file_mb(settings)),
            "STORAGE_QUOTA_MB": str(QUOTA_MB),
            # Every scenario signs up an organization or two from 127.0.0.1: more than the
            # shipped 10 an hour, a limit the bench does not measure.
            "REGISTER_LIMIT_PER_ADDRESS": "10000 per hour",
            # supervisord's programs run `python`, which must be the venv's.
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    if s3 is not None:
        env.update(s3.env(f"bench-{uuid.uuid4().hex[:8]}/"))
    (directory / "instance").mkdir(parents=True, exist_ok=True)
    return env


def run_backend(
    backend: str,
    directory: Path,
    floor: Floor,
    settings: Settings,
    profiler: Profiler,
    only: set[str],
    s3: S3Target | None,
) -> tuple[dict, list[str]]:
    """Start Redis, a database and Coffer for one backend, run the scenarios, stop all."""
    redis = RedisServer(directory / "redis")
    try:
        redis.start()
        with database("sqlite" if backend == "s3" else backend, directory) as database_url:
            port = free_port()
            env = coffer_env(
                directory,
                database_url,
                redis.url,
                port,
                settings,
                s3 if backend == "s3" else None,
            )
            if backend == "s3":
                only = only & S3_SCENARIOS
            # The threads sweep starts Coffer again: the one to stop is run.coffer.
            coffer = Coffer(directory, env, port)
            run = Run(backend, coffer, floor, database_url, settings, profiler, s3)
            try:
                print(f"==> [{backend}] starting Coffer on {LOOPBACK}:{port}", file=sys.stderr)
                run.coffer.start()
                return run_all(run, only)
            finally:
                run.coffer.stop()
    finally:
        redis.stop()


def header(settings: Settings, args: argparse.Namespace, loads: list[tuple]) -> list[str]:
    """The lines above the table: when, where, how loaded, what settings."""
    before, after = loads
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if args.quick else "full"
    lines = [
        f"Coffer bench ({mode}), {stamp}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load average (1/5/15 min) before: "
        + "/".join(f"{v:.2f}" for v in before)
        + ", after: "
        + "/".join(f"{v:.2f}" for v in after),
        f"waitress threads {settings.web_threads}, WORKERS=1, MAX_FILE_SIZE_MB "
        f"{max_file_mb(settings)}; floor = bare WSGI/Flask under the same waitress settings",
    ]
    if args.profile:
        lines.append("PROFILED RUN: py-spy sampled Coffer, so its figures are slower than usual")
    return lines


def save(table: str, payload: dict) -> None:
    """Keep the table and the raw figures under bench/results/ (not in git)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / "latest.md").write_text(table + "\n")
    text = json.dumps(payload, indent=2, default=str)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{stamp}.json").write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when every scenario ran (targets met or not), 1 otherwise."""
    args = parse_args(argv)
    settings = settings_from(args)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if unknown := only - set(SCENARIO_NAMES):
        print(f"error: unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.backends:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    else:
        backends = ["sqlite"] + (["postgresql"] if os.environ.get("DATABASE_URL") else [])
        backends.append("s3")
    if unknown := set(backends) - {"sqlite", "postgresql", "s3"}:
        print(f"error: unknown backend(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    profiler = Profiler(args.profile.resolve() if args.profile else None)

    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    errors: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="coffer-bench-"))
    try:
        floor = Floor(
            root / "floor" / "files",
            settings.web_threads,
            max_file_mb(settings) * MiB + MULTIPART_OVERHEAD,
        )
        seaweed: SeaweedFS | None = None
        try:
            floor.start()
            if "s3" in backends or "migrate" in only:
                seaweed = SeaweedFS(root / "seaweedfs")
                seaweed.start()
            s3 = S3Target(seaweed, seaweed.new_bucket("bench")) if seaweed else None
            for backend in backends:
                try:
                    figures, problems = run_backend(
                        backend, root / backend, floor, settings, profiler, only, s3
                    )
                except Exception as exc:  # noqa: BLE001 - the other backend still runs
                    traceback.print_exc(file=sys.stderr)
                    figures, problems = {}, [f"{backend}: {type(exc).__name__}: {exc}"]
                results[backend] = figures
                errors.extend(problems)
        finally:
            floor.stop()
            if seaweed is not None:
                seaweed.stop()
    finally:
        if args.keep:
            print(f"==> kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()

    table = render(settings, results, header(settings, args, [load_before, load_after]))
    print(table)
    for problem in errors:
        print(f"error: {problem}", file=sys.stderr)
    if not args.no_save:
        save(
            table,
            {
                "settings": asdict(settings),
                "load_before": load_before,
                "load_after": load_after,
                "results": results,
                "errors": errors,
            },
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
