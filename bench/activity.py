"""The `activity` scenario: what the activity record costs an upload, and how fast its page
reads when the organization has a million events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, text

from .client import BenchError, Client, register, small_upload
from .procs import driver_url

if TYPE_CHECKING:
    from .scenarios import Run

# "Without recording": the database drops every event row before it is written, so the
# upload pays for building and sending the statement but not for the row, its five indexes
# and their share of the commit. Coffer has no setting that turns the record off (it is the
# answer to "who did this?"), and the server runs in its own process, so this is the one
# switch the bench can reach without changing what it measures.
DISCARD = {
    "sqlite": [
        "CREATE TRIGGER bench_discard_activity BEFORE INSERT ON activity_events "
        "BEGIN SELECT RAISE(IGNORE); END"
    ],
    "postgresql": [
        "CREATE FUNCTION bench_discard_activity() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN NULL; END $$",
        "CREATE TRIGGER bench_discard_activity BEFORE INSERT ON activity_events "
        "FOR EACH ROW EXECUTE FUNCTION bench_discard_activity()",
    ],
}
KEEP = {
    "sqlite": ["DROP TRIGGER bench_discard_activity"],
    "postgresql": [
        "DROP TRIGGER bench_discard_activity ON activity_events",
        "DROP FUNCTION bench_discard_activity()",
    ],
}

# A million events as one INSERT ... SELECT over a generated series: uploads, downloads,
# renames and logins by the admin, spread one second apart over the last days.
EVENT_TYPES = ("file.uploaded", "file.downloaded", "file.renamed", "auth.login")
SEED = {
    "sqlite": (
        "INSERT INTO activity_events (organization_id, type, at, actor_kind, actor_id, "
        "actor_user_id, actor_email, ip, target_kind, target_id, target_name, file_id) "
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
        "SELECT :org, CASE i % 4 WHEN 0 THEN 'file.uploaded' WHEN 1 THEN 'file.downloaded' "
        "WHEN 2 THEN 'file.renamed' ELSE 'auth.login' END, "
        "datetime(:start, '+' || i || ' seconds'), 'user', :user, :user, :email, "
        "'127.0.0.1', CASE i % 4 WHEN 3 THEN 'user' ELSE 'file' END, "
        "printf('00000000-0000-4000-8000-%012d', i % 5000), printf('seed-%07d.txt', i % 5000), "
        "CASE i % 4 WHEN 3 THEN NULL ELSE printf('00000000-0000-4000-8000-%012d', i % 5000) END "
        "FROM n"
    ),
    "postgresql": (
        "INSERT INTO activity_events (organization_id, type, at, actor_kind, actor_id, "
        "actor_user_id, actor_email, ip, target_kind, target_id, target_name, file_id) "
        "SELECT :org, (ARRAY['file.uploaded', 'file.downloaded', 'file.renamed', "
        "'auth.login'])[i % 4 + 1], CAST(:start AS timestamp) + i * interval '1 second', "
        "'user', :user, :user, :email, '127.0.0.1', "
        "CASE i % 4 WHEN 3 THEN 'user' ELSE 'file' END, "
        "'00000000-0000-4000-8000-' || lpad(CAST(i % 5000 AS text), 12, '0'), "
        "'seed-' || lpad(CAST(i % 5000 AS text), 7, '0') || '.txt', "
        "CASE i % 4 WHEN 3 THEN NULL "
        "ELSE '00000000-0000-4000-8000-' || lpad(CAST(i % 5000 AS text), 12, '0') END "
        "FROM generate_series(0, :last) AS i"
    ),
}


def activity(run: Run) -> dict[str, Any]:
    """Upload p50 with and without the record (rounds of each, alternating), then the
    Activity page and API's first page with `activity_events` events seeded."""
    from .scenarios import percentile, small_text

    settings = run.settings
    client, identity = register(run.port, "activity")
    engine = create_engine(driver_url(run.database_url))
    dialect = engine.dialect.name
    try:
        timings: dict[str, list[float]] = {"with": [], "without": []}
        run.log(
            f"activity: {settings.activity_uploads} x 1 KiB uploads with and without the "
            f"record, in {settings.activity_rounds} rounds of each"
        )
        for round_ in range(settings.activity_rounds):
            for arm in ("with", "without") if round_ % 2 == 0 else ("without", "with"):
                statements = DISCARD[dialect] if arm == "without" else []
                with engine.begin() as conn:
                    for statement in statements:
                        conn.execute(text(statement))
                try:
                    for number in range(settings.activity_uploads // settings.activity_rounds):
                        data = small_text(number)
                        started = time.perf_counter()
                        small_upload(client, f"act-{arm}-{round_}-{number:05d}.txt", data)
                        timings[arm].append((time.perf_counter() - started) * 1000)
                finally:
                    if statements:
                        with engine.begin() as conn:
                            for statement in KEEP[dialect]:
                                conn.execute(text(statement))
        with engine.begin() as conn:
            recorded = conn.execute(
                text(
                    "SELECT count(*) FROM activity_events "
                    "WHERE organization_id = :org AND type = 'file.uploaded'"
                ),
                {"org": identity["organization_id"]},
            ).scalar_one()
        if recorded != len(timings["with"]):
            raise BenchError(f"{recorded} uploads recorded, not the {len(timings['with'])} timed")
        with_p50 = percentile(timings["with"], 0.5)
        without_p50 = percentile(timings["without"], 0.5)

        count = settings.activity_events
        run.log(f"activity: seeding {count:,} events")
        started = time.perf_counter()
        with engine.begin() as conn:
            inserted = conn.execute(
                text(SEED[dialect]),
                {
                    "org": identity["organization_id"],
                    "user": identity["user_id"],
                    "email": identity["email"],
                    "last": count - 1,
                    "start": "2026-01-01 00:00:00",
                },
            ).rowcount
        if inserted != count:
            raise BenchError(f"the seeding inserted {inserted} events, not {count}")
        if dialect == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE activity_events"))
        seed_s = time.perf_counter() - started
        samples = settings.activity_samples
        page_ms = timed_gets(client, "/activity", samples)
        api_ms = timed_gets(client, "/api/org/activity", samples)
        typed_ms = timed_gets(client, "/api/org/activity?type=file.renamed", samples)
        file_ms = timed_gets(
            client, "/api/org/activity?file_id=00000000-0000-4000-8000-000000000042", samples
        )
    finally:
        engine.dispose()
        client.close()
    return {
        "act_upload_with_ms": with_p50,
        "act_upload_without_ms": without_p50,
        "act_upload_cost": with_p50 / without_p50 - 1,
        "act_events": count,
        "act_seed_s": seed_s,
        "act_page_p50_ms": percentile(page_ms, 0.5),
        "act_page_p95_ms": percentile(page_ms, 0.95),
        "act_api_p50_ms": percentile(api_ms, 0.5),
        "act_type_p50_ms": percentile(typed_ms, 0.5),
        "act_file_p50_ms": percentile(file_ms, 0.5),
    }


def timed_gets(client: Client, path: str, count: int) -> list[float]:
    """Milliseconds of `count` sequential GETs of `path` (a page or JSON), after three
    untimed ones; each must answer 200."""
    times: list[float] = []
    for number in range(count + 3):
        started = time.perf_counter()
        response = client.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise BenchError(f"GET {path} answered {response.status}")
        if number >= 3:
            times.append(elapsed)
    return times
