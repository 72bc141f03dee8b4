"""The trash: deleted files and folders leave every listing, search, download and share
link, keep their bytes (counted) until purged, come back where they were, and are removed
for good by "delete forever", an emptied trash, or the sweep once the retention is past;
a purge races safely with a restore, finishes after being cut short, and goes in batches
that never hold SQLite's write lock for long."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from redis import Redis
from sqlalchemy import event, func, select

from app.database.sqlite import immediate
from app.extensions import db
from app.files import lifecycle, trash
from app.files.sweep import sweep_if_due
from app.models import File, Folder, User, utcnow
from app.storage import get_storage
from tests.support.client import Auth, usage
from tests.support.pipeline import process_env
from tests.support.processes import managed
from tests.support.storage import stored_bytes, stored_objects
from tests.support.trash import (
    delete,
    delete_forever,
    restore,
    seed_trash,
    set_retention,
    trash_ids,
    trash_items,
)
from tests.support.waiting import wait_for
from tests.test_folders import new_folder, tus_create, uploaded
from tests.test_share_links import fetch, make_link, secret_path

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def member(app: Flask, auth: Auth) -> Auth:
    """A member of the admin's organization (the admin, `auth`, registers first)."""
    assert auth.register().status_code == 201
    code = auth.invite()
    person = auth.another()
    assert person.register("mia@acme.test", "Acme", invite_code=code).status_code == 201
    return person


def org_body(auth: Auth) -> dict[str, Any]:
    """GET /api/org."""
    body: dict[str, Any] = auth.client.get("/api/org").get_json()
    return body


def listed_ids(auth: Auth, **query: str) -> list[str]:
    """The ids GET /api/files lists."""
    response = auth.client.get("/api/files", query_string=query)
    assert response.status_code == 200, response.get_json()
    return [f["id"] for f in response.get_json()["files"]]


def parse(stamp: str) -> datetime:
    """An API timestamp."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)


def rows_of(app: Flask, organization_id: int) -> tuple[int, int]:
    """(files, folders) rows of the organization, trashed or not."""
    with app.app_context():
        files = db.session.scalar(
            select(func.count()).select_from(File).where(File.organization_id == organization_id)
        )
        folders = db.session.scalar(
            select(func.count())
            .select_from(Folder)
            .where(Folder.organization_id == organization_id)
        )
    return int(files or 0), int(folders or 0)


# ---- delete, list, restore -----------------------------------------------------------------


def test_a_deleted_file_leaves_every_view_keeps_its_bytes_and_comes_back(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    folder = new_folder(auth, "Reports")
    file_id = uploaded(auth, "march.txt", b"march figures\n", folder_id=folder["id"])
    other = uploaded(auth, "april.txt", b"april\n", folder_id=folder["id"])
    worker()
    link = make_link(auth, file_id).get_json()
    secret = secret_path(link["url"])
    assert fetch(app.test_client(), secret).status_code == 200
    keys = set(stored_objects(app))

    assert delete(auth, f"/api/files/{file_id}")[0] == 204

    assert auth.client.get(f"/api/files/{file_id}").status_code == 404
    assert auth.client.get(f"/api/files/{file_id}/download").status_code == 404
    assert fetch(app.test_client(), secret).status_code == 404
    assert listed_ids(auth) == [other]
    assert listed_ids(auth, folder_id=folder["id"]) == [other]
    assert listed_ids(auth, q="march") == []
    assert auth.client.get("/api/files").get_json()["total"] == 1
    # Its bytes are kept and counted, and shown as the trash's.
    assert set(stored_objects(app)) == keys
    body = org_body(auth)
    assert (body["used_bytes"], body["file_count"], body["trash_bytes"]) == (20, 1, 14)
    # Its name is free at once.
    assert uploaded(auth, "march.txt", b"new march\n", folder_id=folder["id"])

    [item] = trash_items(auth)
    assert {k: v for k, v in item.items() if k not in {"deleted_at", "purge_at"}} == {
        "id": file_id,
        "kind": "file",
        "name": "march.txt",
        "path": "/Reports/march.txt",
        "size": 14,
        "deleted_by_email": "admin@acme.test",
    }
    assert parse(item["purge_at"]) - parse(item["deleted_at"]) == timedelta(days=30)
    assert abs(parse(item["deleted_at"]) - utcnow()) < timedelta(minutes=1)

    status, body = restore(auth, file_id)
    # Back where it was; its name was taken meanwhile, so it is numbered.
    assert (status, body) == (
        200,
        {"id": file_id, "kind": "file", "path": "/Reports/march (2).txt"},
    )
    details = auth.client.get(f"/api/files/{file_id}").get_json()
    assert (details["filename"], details["status"]) == ("march (2).txt", "ready")
    with auth.client.get(f"/api/files/{file_id}/download") as response:
        assert response.data == b"march figures\n"
    # The share link answers again (it had not expired).
    assert fetch(app.test_client(), secret).data == b"march figures\n"
    assert trash_items(auth) == []
    assert org_body(auth)["trash_bytes"] == 0
    assert restore(auth, file_id)[0] == 404


def test_a_folder_goes_to_the_trash_and_comes_back_with_everything_in_it(
    app: Flask, auth: Auth
) -> None:
    auth.register()
    top = new_folder(auth, "top")
    mid = new_folder(auth, "mid", top["id"])
    a = uploaded(auth, "a.txt", b"a" * 10, folder_id=top["id"])
    b = uploaded(auth, "b.txt", b"b" * 20, folder_id=mid["id"])
    # Deleted on its own first: it stays a separate item.
    alone = uploaded(auth, "alone.txt", b"c" * 5, folder_id=mid["id"])
    assert delete(auth, f"/api/files/{alone}")[0] == 204

    assert delete(auth, f"/api/folders/{top['id']}")[0] == 204
    assert auth.client.get(f"/api/folders/{mid['id']}").status_code == 404
    assert auth.client.get("/api/folders?parent_id=root").get_json()["folders"] == []
    assert listed_ids(auth, q="txt") == []
    # Uploads into it are refused; a name in the top level is free.
    assert (
        auth.client.post(
            "/api/files/upload",
            data={"file": (__import__("io").BytesIO(b"x"), "x.txt"), "folder_id": mid["id"]},
            headers=auth.headers(),
            content_type="multipart/form-data",
        ).status_code
        == 404
    )
    items = trash_items(auth)
    assert [(i["id"], i["kind"], i["path"], i["size"]) for i in items] == [
        (top["id"], "folder", "/top", 30),
        (alone, "file", "/top/mid/alone.txt", 5),
    ]
    # What went with the folder is not an item of its own.
    assert restore(auth, a)[0] == 404
    assert delete_forever(auth, mid["id"])[0] == 404

    assert restore(auth, top["id"]) == (200, {"id": top["id"], "kind": "folder", "path": "/top"})
    assert auth.client.get(f"/api/folders/{mid['id']}").get_json()["path"] == "/top/mid"
    assert sorted(listed_ids(auth)) == sorted([a, b])
    assert trash_ids(auth) == [alone]
    # The file deleted on its own goes back into the restored folder.
    assert restore(auth, alone)[1]["path"] == "/top/mid/alone.txt"


def test_restore_into_a_folder_deleted_meanwhile_lands_at_the_top(app: Flask, auth: Auth) -> None:
    auth.register()
    inbox = new_folder(auth, "inbox")
    old = new_folder(auth, "old")
    first = uploaded(auth, "first.txt", b"1", folder_id=inbox["id"])
    second = uploaded(auth, "second.txt", b"2", folder_id=old["id"])
    uploaded(auth, "second.txt", b"taken at the top")
    assert delete(auth, f"/api/files/{first}")[0] == 204
    assert delete(auth, f"/api/files/{second}")[0] == 204
    # Its folder is in the trash now, and the other's is gone for good.
    assert delete(auth, f"/api/folders/{inbox['id']}")[0] == 204
    assert delete(auth, f"/api/folders/{old['id']}")[0] == 204
    assert delete_forever(auth, old["id"])[0] == 204
    # Still an item after its folder was purged.
    assert set(trash_ids(auth)) == {first, second, inbox["id"]}

    assert restore(auth, first)[1]["path"] == "/first.txt"
    assert restore(auth, second)[1]["path"] == "/second (2).txt"
    assert auth.client.get(f"/api/files/{first}").get_json()["folder_id"] == "root"
    # The folder comes back empty.
    assert restore(auth, inbox["id"])[0] == 200
    assert listed_ids(auth, folder_id=inbox["id"]) == []


def test_a_resumable_upload_into_a_folder_deleted_meanwhile_ends_at_the_top(
    app: Flask, auth: Auth
) -> None:
    auth.register()
    folder = new_folder(auth, "drop")
    created = tus_create(auth, 4, filename="late.txt", folder_id=folder["id"])
    assert created.status_code == 201
    assert delete(auth, f"/api/folders/{folder['id']}")[0] == 204
    finish = auth.client.patch(
        created.headers["Location"],
        data=b"late",
        headers={
            **TUS,
            **auth.headers(),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert finish.status_code == 204
    file_id = created.headers["Location"].rsplit("/", 1)[-1]
    assert auth.client.get(f"/api/files/{file_id}").get_json()["path"] == "/late.txt"


def test_members_see_and_take_back_only_their_own(app: Flask, auth: Auth, member: Auth) -> None:
    mine = uploaded(member, "mine.txt", b"member's")
    admins = uploaded(auth, "admins.txt", b"admin's")
    shared = new_folder(member, "shared")
    uploaded(auth, "inside.txt", b"admin's inside", folder_id=shared["id"])
    assert delete(member, f"/api/files/{mine}")[0] == 204
    assert delete(auth, f"/api/files/{admins}")[0] == 204
    assert delete(auth, f"/api/folders/{shared['id']}")[0] == 204

    assert trash_ids(member) == [mine]
    assert set(trash_ids(auth)) == {mine, admins, shared["id"]}
    for item_id in (admins, shared["id"]):
        assert restore(member, item_id)[1]["code"] == "forbidden"
        assert delete_forever(member, item_id)[1]["code"] == "forbidden"
    status, body = delete(member, "/api/trash")
    assert (status, body["code"]) == (403, "forbidden")
    assert restore(member, mine)[0] == 200
    assert set(trash_ids(auth)) == {admins, shared["id"]}


def test_another_organizations_trash_is_not_found(app: Flask, auth: Auth) -> None:
    auth.register()
    stranger = auth.another()
    assert stranger.register("boss@globex.test", "Globex").status_code == 201
    theirs = uploaded(stranger, "theirs.txt", b"theirs")
    assert delete(stranger, f"/api/files/{theirs}")[0] == 204

    assert trash_items(auth) == []
    assert restore(auth, theirs)[0] == 404
    assert delete_forever(auth, theirs)[0] == 404
    assert delete(auth, "/api/trash")[0] == 204
    assert trash_ids(stranger) == [theirs]
    for bad in ("nope", "00000000-0000-4000-8000-000000000000"):
        assert restore(auth, bad)[0] == 404


def test_the_trash_pages_by_cursor_newest_first(app: Flask, auth: Auth) -> None:
    auth.register()
    ids = [uploaded(auth, f"f{n}.txt", b"x") for n in range(5)]
    for file_id in ids:
        assert delete(auth, f"/api/files/{file_id}")[0] == 204
    first = auth.client.get("/api/trash?limit=2").get_json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    assert trash_ids(auth) == ids[::-1]
    assert [i["id"] for i in trash_items(auth, limit=2)] == ids[::-1]
    for bad in ("limit=0", "limit=101", "cursor=nonsense"):
        response = auth.client.get(f"/api/trash?{bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["code"] == "invalid_parameter"


# ---- removal for good ----------------------------------------------------------------------


def test_delete_forever_and_empty_free_bytes_and_quota(app: Flask, auth: Auth) -> None:
    auth.register()
    folder = new_folder(auth, "f")
    one = uploaded(auth, "one.txt", b"1" * 10)
    two = uploaded(auth, "two.txt", b"2" * 20, folder_id=folder["id"])
    three = uploaded(auth, "three.txt", b"3" * 30)
    for path in (f"/api/files/{one}", f"/api/folders/{folder['id']}", f"/api/files/{three}"):
        assert delete(auth, path)[0] == 204
    assert usage(auth) == (60, 0)
    assert len(stored_objects(app)) == 3

    assert delete_forever(auth, one)[0] == 204
    assert usage(auth) == (50, 0)
    assert len(stored_objects(app)) == 2
    assert restore(auth, one)[0] == 404

    assert delete(auth, "/api/trash")[0] == 204
    assert usage(auth) == (0, 0)
    assert stored_objects(app) == {}
    assert trash_items(auth) == []
    assert rows_of(app, org_body(auth)["id"]) == (0, 0)
    assert restore(auth, two)[0] == 404


def test_retention_zero_purges_at_the_next_sweep_and_thirty_days_waits(
    app: Flask, auth: Auth, redis: Redis
) -> None:
    def sweep() -> None:
        with app.app_context():
            sweep_if_due(redis, "sweeper", force=True)

    auth.register()
    kept = uploaded(auth, "kept.txt", b"kept")
    assert delete(auth, f"/api/files/{kept}")[0] == 204
    sweep()  # 30 days are not past
    assert trash_ids(auth) == [kept]

    with app.app_context():
        # A month on, the sweep purges it.
        assert trash.purge_due(now=utcnow() + timedelta(days=30, seconds=1)) == 1
    assert trash_ids(auth) == []
    assert usage(auth) == (0, 0)

    set_retention(auth, 0)
    folder = new_folder(auth, "f")
    uploaded(auth, "in.txt", b"in", folder_id=folder["id"])
    assert delete(auth, f"/api/folders/{folder['id']}")[0] == 204
    assert trash_items(auth)[0]["purge_at"] == trash_items(auth)[0]["deleted_at"]
    sweep()
    assert trash_ids(auth) == []
    assert usage(auth) == (0, 0)
    assert stored_objects(app) == {}
    assert rows_of(app, org_body(auth)["id"]) == (0, 0)


def test_the_operators_purge_command(app: Flask, auth: Auth, runner: FlaskCliRunner) -> None:
    auth.register()
    other = auth.another()
    assert other.register("boss@globex.test", "Globex").status_code == 201
    ours = uploaded(auth, "ours.txt", b"ours")
    theirs = uploaded(other, "theirs.txt", b"theirs")
    assert delete(auth, f"/api/files/{ours}")[0] == 204
    assert delete(other, f"/api/files/{theirs}")[0] == 204

    result = runner.invoke(args=["trash", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged 0 file(s)" in result.output
    result = runner.invoke(args=["trash", "purge", "--org", "Acme", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "purged 1 file(s)" in result.output
    assert (trash_ids(auth), trash_ids(other)) == ([], [theirs])
    result = runner.invoke(args=["trash", "purge", "--org", "Nobody", "--older-than", "0"])
    assert result.exit_code != 0
    assert trash_ids(other) == [theirs]


def test_storage_check_counts_the_trash_as_stored(
    app: Flask, auth: Auth, runner: FlaskCliRunner
) -> None:
    auth.register()
    file_id = uploaded(auth, "kept.txt", b"kept in the trash")
    assert delete(auth, f"/api/files/{file_id}")[0] == 204

    report = runner.invoke(args=["storage", "check"])
    assert report.exit_code == 0, report.output
    assert "1 row(s) with stored bytes" in report.output


# ---- races, interruptions and size ---------------------------------------------------------


def at_once(calls: dict[str, Callable[[], int]]) -> dict[str, int]:
    """Run the calls in threads released together; each one's answer."""
    answers: dict[str, int] = {}
    start = threading.Barrier(len(calls))

    def run(name: str, call: Callable[[], int]) -> None:
        start.wait()
        answers[name] = call()

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_restore_and_purge_of_one_item_racing_leave_it_whole_either_way(
    app: Flask, auth: Auth
) -> None:
    """Each round a folder of three files is restored and deleted for good at once, from
    two threads: either it is all back with its bytes, or it is all gone with them."""
    auth.register()
    other = Auth(app, app.test_client())
    assert other.login().status_code == 200
    outcomes = set()
    for round_number in range(6):
        folder = new_folder(auth, f"round {round_number}")
        files = [
            uploaded(auth, f"{n}.txt", f"{round_number}-{n}".encode(), folder_id=folder["id"])
            for n in range(3)
        ]
        assert delete(auth, f"/api/folders/{folder['id']}")[0] == 204
        answers = at_once(
            {
                "restore": lambda item=folder["id"]: restore(auth, item)[0],
                "purge": lambda item=folder["id"]: delete_forever(other, item)[0],
            }
        )
        present = [auth.client.get(f"/api/files/{f}").status_code == 200 for f in files]
        stored = set(stored_objects(app))
        with app.app_context():
            rows = db.session.scalar(
                select(func.count()).select_from(File).where(File.id.in_(files))
            )
        if answers["restore"] == 200:
            assert answers["purge"] == 404
            assert all(present) and rows == 3
            assert all(any(f in key for key in stored) for f in files)
            outcomes.add("restored")
        else:
            assert (answers["restore"], answers["purge"]) == (404, 204)
            assert not any(present) and rows == 0
            assert not any(f in key for key in stored for f in files)
            outcomes.add("gone")
    assert outcomes  # each round ended whole, one way or the other


def test_a_purge_cut_short_is_finished_by_the_next_sweep(
    app: Flask, auth: Auth, redis: Redis, runner: FlaskCliRunner
) -> None:
    """The purge was killed after removing the bytes of half the files and before their
    rows went (it removes bytes first): the items are marked, so no restore takes them,
    and the next sweep finishes them."""
    auth.register()
    folder = new_folder(auth, "big")
    files = [uploaded(auth, f"{n}.txt", b"x" * 10, folder_id=folder["id"]) for n in range(6)]
    alone = uploaded(auth, "alone.txt", b"y" * 10)
    for path in (f"/api/folders/{folder['id']}", f"/api/files/{alone}"):
        assert delete(auth, path)[0] == 204
    organization_id = org_body(auth)["id"]
    with app.app_context():
        # What the purge did before it died: mark, then remove half of the bytes.
        trash.mark_for_purge(organization_id, cutoff=None)
        rows = list(db.session.scalars(select(File).where(File.id.in_(files[:3] + [alone]))))
        lifecycle.remove_bytes(lifecycle.removals(organization_id, rows))
        db.session.rollback()
    assert restore(auth, folder["id"])[0] == 404
    assert restore(auth, alone)[0] == 404
    assert trash_items(auth) == []
    # A purge under way is neither missing bytes nor stray ones.
    assert runner.invoke(args=["storage", "check"]).exit_code == 0

    with app.app_context():
        sweep_if_due(redis, "next-sweep", force=True)
    assert usage(auth) == (0, 0)
    assert stored_objects(app) == {}
    assert rows_of(app, organization_id) == (0, 0)
    assert runner.invoke(args=["storage", "check"]).exit_code == 0


@pytest.fixture
def write_transactions(app: Flask) -> Iterator[list[float]]:
    """The duration of every write transaction (BEGIN IMMEDIATE to its end) on the app's
    engine while the test runs, in seconds."""
    durations: list[float] = []
    began: dict[int, float] = {}
    with app.app_context():
        engine = db.engine

    def on_begin(connection: Any) -> None:
        if immediate.get():
            began[id(connection.connection)] = time.monotonic()

    def on_end(connection: Any) -> None:
        start = began.pop(id(connection.connection), None)
        if start is not None:
            durations.append(time.monotonic() - start)

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    yield durations
    event.remove(engine, "begin", on_begin)
    event.remove(engine, "commit", on_end)
    event.remove(engine, "rollback", on_end)


LARGE_TRASH = 100_000


def test_the_sweep_purges_a_trash_of_100000_items_in_short_batches(
    app: Flask, auth: Auth, write_transactions: list[float]
) -> None:
    auth.register()
    set_retention(auth, 1)
    organization_id = org_body(auth)["id"]
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "admin@acme.test"))
    assert user_id is not None
    seed_trash(app, organization_id, user_id, LARGE_TRASH, utcnow() - timedelta(days=2))
    recent = uploaded(auth, "recent.txt", b"recent")
    assert delete(auth, f"/api/files/{recent}")[0] == 204
    assert org_body(auth)["used_bytes"] == LARGE_TRASH * 10 + 6
    write_transactions.clear()

    with app.app_context():
        started = time.monotonic()
        gone = trash.purge_due()
        took = time.monotonic() - started

    assert gone == LARGE_TRASH
    assert trash_ids(auth) == [recent]
    assert org_body(auth)["used_bytes"] == 6
    assert rows_of(app, organization_id) == (1, 0)
    # Many short transactions: marking and deleting in batches of 500.
    assert len(write_transactions) >= 2 * LARGE_TRASH // trash.PURGE_BATCH
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        longest = max(write_transactions)
        assert longest < 1.0, f"a write transaction held the lock {longest:.2f} s"
    print(f"purged {LARGE_TRASH} items in {took:.1f} s ({LARGE_TRASH / took:.0f}/s)")


def test_a_purge_removes_the_bytes_through_the_backend(app: Flask, auth: Auth) -> None:
    auth.register()
    file_id = uploaded(auth, "bytes.txt", b"the bytes")
    (key,) = stored_objects(app)
    assert stored_bytes(app, key) == b"the bytes"
    assert delete(auth, f"/api/files/{file_id}")[0] == 204
    assert stored_bytes(app, key) == b"the bytes"
    assert delete_forever(auth, file_id)[0] == 204
    with app.app_context():
        assert get_storage().size(key) is None


KILLED_TRASH = 4000


def test_a_worker_killed_mid_purge_leaves_nothing_half_and_the_next_sweep_finishes(
    app: Flask, auth: Auth, tmp_path: Path, runner: FlaskCliRunner
) -> None:
    """A worker whose start-up sweep is purging a trash of 4,000 files (their bytes really
    stored) is SIGKILLed once it has removed some: every row left is still in the trash and
    marked (no restore takes it, no listing shows it), storage check finds nothing missing
    nor stray, and the next sweep removes the rest, bytes and rows."""
    auth.register()
    set_retention(auth, 0)
    organization_id = org_body(auth)["id"]
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "admin@acme.test"))
        assert user_id is not None
    seed_trash(app, organization_id, user_id, KILLED_TRASH, utcnow() - timedelta(days=1))
    with app.app_context():
        keys = list(db.session.scalars(select(File.file_path)))
        storage = get_storage()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: storage.put(key, b"0123456789"), keys))
    assert len(stored_objects(app)) == KILLED_TRASH

    def rows_left() -> int:
        with app.app_context():
            count = db.session.scalar(select(func.count()).select_from(File))
            db.session.rollback()
        return int(count or 0)

    with managed(["worker"], process_env(app), tmp_path / "worker.log") as worker:
        wait_for(
            lambda: rows_left() < KILLED_TRASH,
            60,
            "the worker's sweep to purge its first files",
        )
        worker.kill()
    left = rows_left()
    assert 0 < left < KILLED_TRASH, "the purge ended before the kill: nothing was cut short"

    with app.app_context():
        rows = list(db.session.execute(select(File.id, File.trashed_at, File.purging)))
        db.session.rollback()
    # Every row left is still in the trash, and marked for removal: none came back to life.
    assert all(trashed_at is not None and purging for _, trashed_at, purging in rows)
    assert restore(auth, rows[0][0])[0] == 404
    assert trash_items(auth) == []
    # Bytes of the rows left may be gone already: a purge under way is not a loss.
    assert runner.invoke(args=["storage", "check"]).exit_code == 0

    with managed(["worker"], process_env(app), tmp_path / "worker-2.log") as second:
        wait_for(lambda: rows_left() == 0, 120, "the next sweep to finish the purge")
        second.stop()
    assert stored_objects(app) == {}
    assert usage(auth) == (0, 0)
    assert runner.invoke(args=["storage", "check"]).exit_code == 0
