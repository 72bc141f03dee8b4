"""The bench's one table: the same rows every run, a column per database, targets marked."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .peer import PACKAGES as PEER_PACKAGES
from .scenarios import NAME_MONTHS, NAME_WORDS, RARE_EVERY, RARE_STATUS, SEARCH_TEXT, Settings

Figures = dict[str, Any]
MISSING = "-"


@dataclass(frozen=True)
class Row:
    """One line of the table: how to show a backend's figures and whether they meet it."""

    label: str
    target: str
    cell: Callable[[Figures], str]
    met: Callable[[Figures], bool] | None = None
    # Left out of the table when no database has its figures (the `threads` sweep's rows,
    # which the default run does not measure).
    optional: bool = False


def number(value: Any, digits: int) -> str:
    """A figure with `digits` decimals, or '-' when it was not measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,.{digits}f}"


def one(key: str, digits: int = 1) -> Callable[[Figures], str]:
    """A cell showing one figure."""
    return lambda f: number(f.get(key), digits)


def several(keys: tuple[str, ...], digits: int = 1) -> Callable[[Figures], str]:
    """A cell showing figures as `a / b / c`; missing when the first is."""

    def cell(f: Figures) -> str:
        if f.get(keys[0]) is None:
            return MISSING
        return " / ".join(number(f.get(key), digits) for key in keys)

    return cell


def pair(first: str, second: str, digits: int = 1) -> Callable[[Figures], str]:
    """A cell showing two figures as `a / b`."""

    def cell(f: Figures) -> str:
        if f.get(first) is None and f.get(second) is None:
            return MISSING
        return f"{number(f.get(first), digits)} / {number(f.get(second), digits)}"

    return cell


def rounds(key: str) -> Callable[[Figures], str]:
    """A cell showing a figure per round, then their median: `a / b / c (m)`."""

    def cell(f: Figures) -> str:
        values = f.get(key)
        if not values:
            return MISSING
        each = " / ".join(number(value, 0) for value in values)
        return f"{each} ({number(f.get(f'{key}_median'), 0)})"

    return cell


def ratio_with_rounds(key: str, each: str) -> Callable[[Figures], str]:
    """A cell showing a ratio, then the range of the same ratio round by round."""

    def cell(f: Figures) -> str:
        if f.get(key) is None:
            return MISSING
        values = f.get(each) or []
        spread = f" ({number(min(values), 2)}-{number(max(values), 2)})" if values else ""
        return number(f[key], 2) + spread

    return cell


def skipped_or(cell: Callable[[Figures], str]) -> Callable[[Figures], str]:
    """The cell, or why the tus Node server did not run beside Coffer."""
    return lambda f: f.get("resumable_peer_skipped") or cell(f)


def check(key: str, test: Callable[[Any], bool]) -> Callable[[Figures], bool]:
    """Whether a measured figure passes `test` (False when it was not measured)."""
    return lambda f: f.get(key) is not None and bool(test(f[key]))


def rows(settings: Settings) -> list[Row]:
    """The table's rows for these sizes."""
    large, huge = settings.large_mb, settings.huge_mb
    files, clients = settings.pipeline_files, settings.pipeline_clients
    listed = f"{settings.listing_files:,}"

    def with_failed(key: str) -> Callable[[Figures], str]:
        def cell(f: Figures) -> str:
            text = number(f.get(f"{key}_rate"), 0)
            failed = f.get(f"{key}_failed")
            return f"{text} ({failed} failed)" if failed else text

        return cell

    return [
        Row(
            f"upload {large} MiB: seconds, Coffer / floor",
            "",
            pair("large_coffer_s", "large_floor_s", 2),
        ),
        Row(
            f"upload {large} MiB: throughput, share of the floor's (s3: boto3's)",
            ">= 0.90 (s3: >= 0.70)",
            one("large_ratio", 2),
            lambda f: (
                f.get("large_ratio") is not None
                and f["large_ratio"] >= (0.7 if f.get("storage") == "s3" else 0.9)
            ),
        ),
        Row(f"upload {large} MiB: web peak RSS, MiB", "", one("large_rss_mib", 0)),
        Row(
            f"upload {huge} MiB: seconds, Coffer / floor",
            "",
            pair("huge_coffer_s", "huge_floor_s", 2),
        ),
        Row(f"upload {huge} MiB: throughput, share of the floor's", "", one("huge_ratio", 2)),
        Row(
            f"upload {huge} MiB: web peak RSS, MiB",
            "< 150",
            one("huge_rss_mib", 0),
            check("huge_rss_mib", lambda v: v < 150),
        ),
        Row(f"{files} x 1 KiB, 1 client: uploads/s", "", with_failed("pipe1")),
        Row(
            f"{files} x 1 KiB, 1 client: all final, s after last upload",
            "",
            one("pipe1_final_after_s", 2),
        ),
        Row(
            f"{files} x 1 KiB, 1 client: upload-to-ready p50 / p95, ms",
            "p50 < 15, p95 < 50",
            pair("pipe1_p50_ms", "pipe1_p95_ms"),
            lambda f: (
                f.get("pipe1_p50_ms") is not None
                and f["pipe1_p50_ms"] < 15
                and f.get("pipe1_p95_ms") is not None
                and f["pipe1_p95_ms"] < 50
            ),
        ),
        Row(
            f"{files} x 1 KiB, 1 client: CPU ms per file, web / worker",
            "",
            pair("pipe1_web_cpu_ms", "pipe1_worker_cpu_ms"),
        ),
        Row(
            f"{files} x 1 KiB, {clients} clients: uploads/s",
            ">= 150",
            with_failed(f"pipe{clients}"),
            check(f"pipe{clients}_rate", lambda v: v >= 150),
        ),
        Row(
            f"{files} x 1 KiB, {clients} clients: all final, s after last upload",
            "<= 1.0",
            one(f"pipe{clients}_final_after_s", 2),
            check(f"pipe{clients}_final_after_s", lambda v: v <= 1.0),
        ),
        Row(
            f"{files} x 1 KiB, {clients} clients: upload-to-ready p50 / p95, ms",
            "",
            pair(f"pipe{clients}_p50_ms", f"pipe{clients}_p95_ms"),
        ),
        Row(
            f"{files} x 1 KiB, {clients} clients: CPU ms per file, web / worker",
            "",
            pair(f"pipe{clients}_web_cpu_ms", f"pipe{clients}_worker_cpu_ms"),
        ),
        Row(
            f"list {listed} files: first page p50 / p95, ms",
            "p50 < 10",
            pair("list_first_p50", "list_first_p95"),
            check("list_first_p50", lambda v: v < 10),
        ),
        Row(
            f"list {listed} files: next-to-last page by ?page= p50 / p95, ms",
            "",
            pair("list_page_p50", "list_page_p95"),
        ),
        Row(
            f"list {listed} files: same page by ?cursor= p50 / p95, ms",
            "",
            pair("list_cursor_p50", "list_cursor_p95"),
        ),
        Row(
            f"list {listed} files: that page / first page, p50 (?page= / ?cursor=)",
            "<= 2 (cursor)",
            pair("list_page_ratio", "list_cursor_ratio", 2),
            check("list_cursor_ratio", lambda v: v <= 2),
        ),
        Row(
            f"list {listed} files: next_cursor offered beside page",
            "yes",
            lambda f: (
                MISSING
                if f.get("list_cursor_offered") is None
                else ("yes" if f["list_cursor_offered"] else "no")
            ),
            check("list_cursor_offered", bool),
        ),
        Row(
            f"list {listed} files: ?status=ready first page p50 / p95, ms",
            "p50 < 10",
            pair("list_ready_p50", "list_ready_p95"),
            check("list_ready_p50", lambda v: v < 10),
        ),
        Row(
            f"list {listed} files: ?status={RARE_STATUS} (1 in {RARE_EVERY:,}) first page "
            "p50 / p95, ms",
            "p50 < 10",
            pair("list_rare_p50", "list_rare_p95"),
            check("list_rare_p50", lambda v: v < 10),
        ),
        Row(f"list {listed} files: first page req/s, 4 clients", "", one("list_rps", 0)),
        Row(f"list {listed} files: seeding (one INSERT ... SELECT), s", "", one("list_seed_s", 1)),
        Row(
            f"1 KiB upload p50, ms, org of {listed} files / empty org",
            "about equal",
            pair("quota_upload_full_p50", "quota_upload_empty_p50"),
            lambda f: (
                f.get("quota_upload_full_p50") is not None
                and f["quota_upload_full_p50"] <= 1.5 * f["quota_upload_empty_p50"] + 2
            ),
        ),
        Row(
            f"GET /api/org p50, ms, org of {listed} files / empty org",
            "about equal",
            pair("quota_org_full_p50", "quota_org_empty_p50"),
            lambda f: (
                f.get("quota_org_full_p50") is not None
                and f["quota_org_full_p50"] <= 1.5 * f["quota_org_empty_p50"] + 2
            ),
        ),
        *folders_rows(settings),
        Row(
            f"resumable {huge} MiB in 8 MiB PATCHes, Coffer: MB/s each round (median)",
            "",
            rounds("resumable_mbps"),
        ),
        Row(
            f"resumable {huge} MiB, same client, tus Node server (@tus/server "
            f"{PEER_PACKAGES['@tus/server']}, file store): MB/s each round (median)",
            "",
            skipped_or(rounds("resumable_peer_mbps")),
        ),
        Row(
            f"resumable {huge} MiB: Coffer's median MB/s / the Node server's (each round)",
            ">= 0.80",
            skipped_or(ratio_with_rounds("resumable_peer_ratio", "resumable_peer_pair_ratios")),
            check("resumable_peer_ratio", lambda v: v >= 0.8),
        ),
        Row(
            f"resumable {huge} MiB: the disk alone, the same 8 MiB steps each fsynced: "
            "MB/s each round (median)",
            "",
            skipped_or(rounds("resumable_disk_mbps")),
        ),
        Row(
            f"resumable {huge} MiB: seconds, best round, resumable / one multipart upload",
            "",
            pair("resumable_s", "resumable_multipart_s", 2),
        ),
        Row(
            f"resumable {huge} MiB: throughput, share of one multipart upload's",
            "",
            one("resumable_ratio", 2),
        ),
        Row(
            f"resumable {huge} MiB: web peak RSS, MiB",
            "< 150",
            one("resumable_rss_mib", 0),
            check("resumable_rss_mib", lambda v: v < 150),
        ),
        Row(
            f"load, {settings.load_clients} clients for {settings.load_seconds:.0f} s: requests/s",
            "",
            one("load_rps", 0),
        ),
        Row(
            "load: 5xx answers and connection errors",
            "0",
            one("load_errors", 0),
            check("load_errors", lambda v: v == 0),
        ),
        Row("load: latency p50 / p99, ms", "", pair("load_p50_ms", "load_p99_ms")),
        Row(
            "load: every upload final, s after the load ends",
            "<= 60",
            one("load_final_after_s", 1),
            check("load_final_after_s", lambda v: v <= 60),
        ),
        *threads_rows(settings),
        *zip_rows(settings),
        *activity_rows(settings),
        *webdav_rows(settings),
        *previews_rows(),
        Row(
            f"storage migrate --to s3, {settings.migrate_files:,} files: seconds",
            "",
            one("migrate_s", 1),
        ),
        Row(
            f"trash purge, {settings.trash_files:,} items: items/s",
            "",
            one("trash_rate", 0),
        ),
        Row("GET /api/auth/me by cookie req/s, 4 clients", "", one("me_rps", 0)),
        Row("GET /api/auth/me by token req/s, 4 clients", "", one("me_token_rps", 0)),
        Row("bare Flask route req/s, 4 clients, same server", "", one("bare_rps", 0)),
        Row(
            "/api/auth/me by cookie, share of the bare route's req/s",
            ">= 0.50",
            one("me_ratio", 2),
            check("me_ratio", lambda v: v >= 0.5),
        ),
        Row(
            "/api/auth/me by token, share of the bare route's req/s",
            ">= 0.50",
            one("me_token_ratio", 2),
            check("me_token_ratio", lambda v: v >= 0.5),
        ),
        Row(
            "CPU ms per request, /api/auth/me by cookie / by token / bare route",
            "",
            several(("me_cpu_ms", "me_token_cpu_ms", "bare_cpu_ms"), 2),
        ),
    ]


def folders_rows(settings: Settings) -> list[Row]:
    """The `folders` scenario's rows: search, a big folder's pages by name, its move, and
    an upload into it."""
    files, big = f"{settings.folders_files:,}", f"{settings.folders_big:,}"
    where = f"{files} files in {settings.folders_count:,} folders"
    every = len(NAME_WORDS) * len(NAME_MONTHS)

    def upload(f: Figures) -> str:
        if f.get("folders_upload_ratio") is None:
            return MISSING
        figures = pair("folders_upload_big_p50", "folders_upload_empty_p50")(f)
        return f"{figures} ({number(f['folders_upload_ratio'], 2)})"

    return [
        Row(
            f"{where}: name search first page (`q={SEARCH_TEXT}`, 1 name in {every:,}) "
            "p50 / p95, ms",
            "p50 < 20",
            pair("folders_search_p50", "folders_search_p95"),
            check("folders_search_p50", lambda v: v < 20),
        ),
        Row(
            f"{where}: a folder of {big} files by name, first page p50 / p95, ms",
            "p50 < 10",
            pair("folders_first_p50", "folders_first_p95"),
            check("folders_first_p50", lambda v: v < 10),
        ),
        Row(
            f"{where}: that folder by name, next-to-last page by ?cursor= p50 / p95, ms",
            "p50 < 10",
            pair("folders_deep_p50", "folders_deep_p95"),
            check("folders_deep_p50", lambda v: v < 10),
        ),
        Row(
            f"{where}: moving that folder (PATCH parent_id, there and back) p50 / p95, ms",
            "p50 < 20",
            pair("folders_move_p50", "folders_move_p95"),
            check("folders_move_p50", lambda v: v < 20),
        ),
        Row(
            f"{where}: 1 KiB upload p50, ms, into that folder / into an empty org (ratio)",
            "ratio <= 1.10",
            upload,
            check("folders_upload_ratio", lambda v: v <= 1.1),
        ),
        Row(
            f"{where}: seeding (two INSERT ... SELECT), s",
            "",
            one("folders_seed_s", 1),
        ),
    ]


def activity_rows(settings: Settings) -> list[Row]:
    """The `activity` scenario's rows: the record's cost to an upload, and its pages."""
    events = f"{settings.activity_events:,} events"
    return [
        Row(
            "1 KiB upload p50, 1 client, with / without the activity record, ms",
            "",
            pair("act_upload_with_ms", "act_upload_without_ms", 2),
        ),
        Row(
            "1 KiB upload p50: the activity record's cost",
            "<= 10 %",
            lambda f: (
                MISSING
                if f.get("act_upload_cost") is None
                else f"{number(f['act_upload_cost'] * 100, 1)} %"
            ),
            check("act_upload_cost", lambda v: v <= 0.10),
        ),
        Row(
            f"Activity page, {events}: first page p50 / p95, ms",
            "< 20",
            pair("act_page_p50_ms", "act_page_p95_ms"),
            check("act_page_p50_ms", lambda v: v < 20),
        ),
        Row(
            f"GET /api/org/activity, {events}: first page p50, all / by type / by file, ms",
            "",
            several(("act_api_p50_ms", "act_type_p50_ms", "act_file_p50_ms")),
        ),
        Row(f"activity: seeding {events} (one INSERT ... SELECT), s", "", one("act_seed_s", 1)),
    ]


def zip_rows(settings: Settings) -> list[Row]:
    """The `zip` scenario's rows: a folder's zip beside one file of the same bytes."""
    size = settings.zip_files * settings.zip_file_kib / 1024
    what = f"zip of a folder of {settings.zip_files:,} x {settings.zip_file_kib:,} KiB"
    return [
        Row(
            f"{what}: seconds, best round, zip / one {size:,.0f} MiB file",
            "",
            pair("zip_s", "zip_file_s", 2),
        ),
        Row(
            f"{what}: throughput, share of the one file's",
            ">= 0.80",
            one("zip_ratio", 2),
            check("zip_ratio", lambda v: v >= 0.8),
        ),
        Row(
            f"{what}: web peak RSS, MiB (as the zip starts)",
            "< 150",
            lambda f: (
                MISSING
                if f.get("zip_rss_mib") is None
                else f"{number(f['zip_rss_mib'], 0)} ({number(f.get('zip_rss_start_mib'), 0)})"
            ),
            check("zip_rss_mib", lambda v: v < 150),
        ),
    ]


def previews_rows() -> list[Row]:
    """The `previews` scenario's rows: the previews job's work per case, and its memory."""
    return [
        Row(
            "previews of 200 JPEGs of 12 MP: images/s, one process",
            "",
            one("previews_photos_per_s", 2),
        ),
        Row(
            "previews: peak RSS, 12 MP photos / a 100 MP JPEG / a 100-page PDF, MiB",
            "< 512",
            several(tuple(f"previews_{case}_peak_mib" for case in ("photos", "huge", "pdf")), 0),
            lambda f: all(
                f.get(f"previews_{case}_peak_mib", 1e9) < 512 for case in ("photos", "huge", "pdf")
            ),
        ),
        Row(
            "previews: a 100 MP JPEG / a 100-page PDF's first page, s",
            "",
            pair("previews_huge_s", "previews_pdf_s", 2),
        ),
    ]


def webdav_rows(settings: Settings) -> list[Row]:
    """The `webdav` scenario's rows: a large folder's PROPFIND, rclone beside the API."""
    big = f"{settings.huge_mb:,} MiB"
    return [
        Row(
            "WebDAV PROPFIND Depth 1 (allprop) of 10,000 files: p50 / p95 ms",
            "p50 < 500",
            pair("dav_propfind_p50_ms", "dav_propfind_p95_ms", 0),
            check("dav_propfind_p50_ms", lambda v: v < 500),
        ),
        Row(
            "rclone copy of 1,000 x 1 KiB to /dav/ and back: files/s (API, 4 clients)",
            "",
            lambda f: (
                MISSING
                if f.get("dav_small_up_rate") is None
                else (
                    f"{number(f['dav_small_up_rate'], 0)} ({number(f.get('api_small_up_rate'), 0)})"
                    f" / {number(f.get('dav_small_down_rate'), 0)}"
                    f" ({number(f.get('api_small_down_rate'), 0)})"
                )
            ),
        ),
        Row(
            f"rclone copy of one {big} file up / back: MiB/s (API)",
            "",
            lambda f: (
                MISSING
                if f.get("dav_large_up_mibs") is None
                else (
                    f"{number(f['dav_large_up_mibs'], 0)} ({number(f.get('api_large_up_mibs'), 0)})"
                    f" / {number(f.get('dav_large_down_mibs'), 0)}"
                    f" ({number(f.get('api_large_down_mibs'), 0)})"
                )
            ),
        ),
        Row(
            f"rclone / API throughput of one {big} file, up / back",
            ">= 0.8",
            pair("dav_large_up_ratio", "dav_large_down_ratio", 2),
            lambda f: (
                f.get("dav_large_up_ratio") is not None
                and f["dav_large_up_ratio"] >= 0.8
                and f["dav_large_down_ratio"] >= 0.8
            ),
        ),
        Row(
            f"one GET of the {big} file, WebDAV / API download (best of 3 each, same client):"
            " MiB/s, ratio",
            "",
            lambda f: (
                MISSING
                if f.get("dav_get_mibs") is None
                else (
                    f"{number(f['dav_get_mibs'], 0)} / {number(f.get('api_get_mibs'), 0)},"
                    f" {number(f.get('dav_get_ratio'), 2)}"
                )
            ),
        ),
    ]


def threads_rows(settings: Settings) -> list[Row]:
    """One row per WEB_THREADS x WORKERS of the `threads` sweep (only when it ran)."""

    def cell(key: str) -> Callable[[Figures], str]:
        def text(f: Figures) -> str:
            if f.get(f"{key}_rps") is None:
                return MISSING
            return (
                f"{number(f[f'{key}_rps'], 0)} / {number(f.get(f'{key}_p99_ms'), 0)} / "
                f"{number(f.get(f'{key}_errors'), 0)} / {number(f.get(f'{key}_final_after_s'), 1)}"
            )

        return text

    found = []
    for web_threads in settings.threads_web:
        for workers in settings.threads_workers:
            key = f"threads_{web_threads}x{workers}"
            found.append(
                Row(
                    f"threads: WEB_THREADS={web_threads}, WORKERS={workers}, "
                    f"{settings.load_clients} clients for {settings.threads_seconds:.0f} s: "
                    "req/s / p99 ms / 5xx / all final s after",
                    "5xx: 0",
                    cell(key),
                    check(f"{key}_errors", lambda v: v == 0),
                    optional=True,
                )
            )
    return found


def render(settings: Settings, results: dict[str, Figures], header: list[str]) -> str:
    """The table as Markdown, preceded by the header lines; `ok`/`MISS` mark targets."""
    backends = list(results)
    titles = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "s3": "SQLite + S3"}
    lines = [*header, ""]
    lines.append("| figure | target | " + " | ".join(titles.get(b, b) for b in backends) + " |")
    lines.append("|---|---|" + "---|" * len(backends))
    for row in rows(settings):
        if row.optional and all(row.cell(results[b]) == MISSING for b in backends):
            continue
        cells = []
        for backend in backends:
            figures = results[backend]
            text = row.cell(figures)
            # A skipped comparison ("skipped: node not found") neither meets nor misses.
            if row.met is not None and text != MISSING and not text.startswith("skipped"):
                text += " ok" if row.met(figures) else " MISS"
            cells.append(text)
        lines.append(f"| {row.label} | {row.target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
