"""Versions: an upload with on_conflict=replace adds a version under the file's id; the file
answers with its newest ready version; older ones are listed, downloaded, restored, kept
to `versions_kept`, and counted in the quota."""

from __future__ import annotations

import base64
import io
import json
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from app.broker import get_queue
from app.database import write_transaction
from app.extensions import db
from app.files import lifecycle
from app.files.sweep import requeue_stuck
from app.models import File, FileVersion, Organization
from app.services.queue import job_id
from app.services.storage_check import check
from tests.support.client import Auth, bearer, multipart
from tests.support.pipeline import text_bytes
from tests.support.receiver import receiver
from tests.support.storage import stored_bytes, stored_objects
from tests.support.tus import TUS, metadata, patch

V1 = b"the first draft of the report\n"
V2 = b"the second draft, longer than the first one\n"
V3 = b"the third and final draft of the report, longest of them all\n"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Deliveries to a receiver on this host, retried at once."""
    return {"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": [0, 0]}


def send(auth: Auth, name: str, data: bytes, **fields: str) -> Any:
    """POST /api/files/upload with extra form fields (cookie + CSRF)."""
    body, content_type = multipart(name, data, "text/plain", fields)
    return auth.client.post(
        "/api/files/upload", data=body, headers=auth.headers(), content_type=content_type
    )


def uploaded(auth: Auth, name: str, data: bytes, **fields: str) -> dict[str, Any]:
    """Upload, expecting 201; the answer."""
    response = send(auth, name, data, **fields)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def details(auth: Auth, file_id: str) -> dict[str, Any]:
    """GET /api/files/<id>, expecting 200."""
    response = auth.client.get(f"/api/files/{file_id}")
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def download(auth: Auth, file_id: str) -> bytes:
    """GET /api/files/<id>/download, expecting 200 (following a presigned redirect)."""
    with auth.client.get(f"/api/files/{file_id}/download", follow_redirects=True) as response:
        assert response.status_code == 200, response.status_code
        return bytes(response.get_data())


def versions_of(auth: Auth, file_id: str) -> list[dict[str, Any]]:
    """GET /api/files/<id>/versions, expecting 200."""
    response = auth.client.get(f"/api/files/{file_id}/versions")
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["versions"]
    return found


def version_bytes(auth: Auth, file_id: str, number: int) -> bytes:
    """One version's download, expecting 200."""
    with auth.client.get(
        f"/api/files/{file_id}/versions/{number}/download", follow_redirects=True
    ) as response:
        assert response.status_code == 200, response.get_json()
        return bytes(response.get_data())


def restore(auth: Auth, file_id: str, number: int) -> Any:
    """POST /api/files/<id>/versions/<n>/restore."""
    return auth.client.post(
        f"/api/files/{file_id}/versions/{number}/restore", headers=auth.headers()
    )


def org_usage(auth: Auth) -> dict[str, Any]:
    """GET /api/org."""
    body: dict[str, Any] = auth.client.get("/api/org").get_json()
    return body


def set_org(app: Flask, auth: Auth, **values: Any) -> None:
    """Change the caller's organization row (its quota) in a context of its own."""
    org_id = org_usage(auth)["id"]
    with app.app_context():
        db.session.execute(update(Organization).where(Organization.id == org_id).values(**values))
        db.session.commit()
        db.session.remove()


def with_versions(auth: Auth, worker: Callable[[], None], *contents: bytes) -> str:
    """A ready file `report.txt` whose versions, in order, have these contents."""
    file_id = str(uploaded(auth, "report.txt", contents[0])["file_id"])
    worker()
    for number, data in enumerate(contents[1:], start=2):
        body = uploaded(auth, "report.txt", data, on_conflict="replace")
        assert (body["file_id"], body["version"], body["status"]) == (file_id, number, "pending")
        worker()
    return file_id


# ---- replacing -----------------------------------------------------------------------


def test_replace_adds_version_2_under_the_same_id_and_everything_answers_with_it(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = str(uploaded(auth, "report.txt", V1)["file_id"])
    worker()
    link = auth.client.post(f"/api/files/{file_id}/links", json={}, headers=auth.headers())
    assert link.status_code == 201, link.get_json()
    secret_path = "/s/" + link.get_json()["url"].rsplit("/s/", 1)[1]

    body = uploaded(auth, "REPORT.txt", V2, on_conflict="replace")
    assert body == {
        "file_id": file_id,
        "filename": "report.txt",
        "size": len(V2),
        "status": "pending",
        "version": 2,
    }
    # Until version 2 is validated, the file answers with version 1.
    assert details(auth, file_id)["version"] == 1
    assert download(auth, file_id) == V1
    listed = versions_of(auth, file_id)
    assert [(v["version"], v["status"], v["current"]) for v in listed] == [
        (2, "pending", False),
        (1, "ready", True),
    ]

    worker()
    got = details(auth, file_id)
    assert (got["version"], got["size"], got["status"], got["filename"]) == (
        2,
        len(V2),
        "ready",
        "report.txt",
    )
    assert download(auth, file_id) == V2
    with auth.client.get(secret_path, follow_redirects=True) as shared:
        assert shared.status_code == 200
        assert shared.get_data() == V2
    # One file in the listing, the old version still there to download.
    files = auth.client.get("/api/files").get_json()
    assert [f["id"] for f in files["files"]] == [file_id]
    assert files["total"] == 1
    assert [(v["version"], v["current"]) for v in versions_of(auth, file_id)] == [
        (2, True),
        (1, False),
    ]
    assert version_bytes(auth, file_id, 1) == V1
    assert version_bytes(auth, file_id, 2) == V2


def test_replace_onto_a_free_name_is_a_new_file_and_onto_a_folder_is_refused(
    app: Flask, auth: Auth
) -> None:
    auth.register()
    body = uploaded(auth, "fresh.txt", V1, on_conflict="replace")
    assert (body["filename"], body["version"]) == ("fresh.txt", 1)
    folder = auth.client.post("/api/folders", json={"name": "Plans"}, headers=auth.headers())
    assert folder.status_code == 201
    keys = set(stored_objects(app))
    response = send(auth, "plans", V2, on_conflict="replace")
    assert (response.status_code, response.get_json()["code"]) == (409, "name_taken")
    assert set(stored_objects(app)) == keys


def test_a_new_version_that_fails_leaves_the_current_one(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = str(uploaded(auth, "report.pdf", b"%PDF-1.4\n%%EOF\n")["file_id"])
    worker()
    first = details(auth, file_id)
    assert first["status"] == "ready"
    # Not a PDF: the content does not match the name's extension.
    assert uploaded(auth, "report.pdf", b"just some text\n", on_conflict="replace")["version"] == 2
    worker()
    after = details(auth, file_id)
    assert after == first
    listed = versions_of(auth, file_id)
    assert [(v["version"], v["status"], v["current"]) for v in listed] == [
        (2, "failed", False),
        (1, first["status"], True),
    ]
    response = auth.client.get(f"/api/files/{file_id}/versions/2/download")
    assert (response.status_code, response.get_json()["code"]) == (409, "not_ready")
    assert auth.client.get(f"/api/files/{file_id}/versions/9/download").status_code == 404
    assert restore(auth, file_id, 2).status_code == 409


def test_a_version_that_would_pass_the_quota_is_refused_and_the_current_is_kept(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    set_org(app, auth, storage_quota_mb=1)
    first = text_bytes(600 * 1024, seed=1)
    file_id = str(uploaded(auth, "big.txt", first)["file_id"])
    worker()
    keys = set(stored_objects(app))
    response = send(auth, "big.txt", text_bytes(600 * 1024, seed=2), on_conflict="replace")
    assert (response.status_code, response.get_json()["code"]) == (507, "quota_exceeded")
    assert set(stored_objects(app)) == keys
    assert org_usage(auth)["used_bytes"] == len(first)
    assert [v["version"] for v in versions_of(auth, file_id)] == [1]
    assert download(auth, file_id) == first
    # The copy a restore makes counts too.
    assert (restore(auth, file_id, 1).status_code, set(stored_objects(app))) == (507, keys)


def test_every_version_counts_in_used_bytes_and_versions_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = with_versions(auth, worker, V1, V2)
    org = org_usage(auth)
    assert org["used_bytes"] == len(V1) + len(V2)
    assert org["versions_bytes"] == len(V1)
    assert org["file_count"] == 1
    # A pending version counts from its upload.
    uploaded(auth, "report.txt", V3, on_conflict="replace")
    org = org_usage(auth)
    assert org["used_bytes"] == len(V1) + len(V2) + len(V3)
    assert org["versions_bytes"] == len(V1) + len(V3)
    worker()
    org = org_usage(auth)
    assert org["used_bytes"] == len(V1) + len(V2) + len(V3)
    assert org["versions_bytes"] == len(V1) + len(V2)
    assert details(auth, file_id)["size"] == len(V3)
    # The storage check agrees: version bytes are neither stray nor missing.
    with app.app_context():
        report = check()
        db.session.remove()
    assert (report.orphans, report.missing, report.size_mismatches, report.counters) == (
        [],
        [],
        [],
        [],
    )


def test_versions_kept_2_keeps_exactly_two(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    response = auth.client.patch("/api/org", json={"versions_kept": 2}, headers=auth.headers())
    assert response.status_code == 200, response.get_json()
    file_id = with_versions(auth, worker, V1, V2, V3)
    listed = versions_of(auth, file_id)
    assert [(v["version"], v["current"]) for v in listed] == [(3, True), (2, False)]
    assert version_bytes(auth, file_id, 2) == V2
    assert auth.client.get(f"/api/files/{file_id}/versions/1/download").status_code == 404
    # Version 1's bytes are gone from the store and the usage.
    assert org_usage(auth)["used_bytes"] == len(V2) + len(V3)
    assert sorted(stored_objects(app).values()) == sorted([len(V2), len(V3)])


def test_restore_version_1_makes_version_3_with_its_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = with_versions(auth, worker, V1, V2)
    response = restore(auth, file_id, 1)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["version"], body["size"], body["status"], body["current"]) == (
        3,
        len(V1),
        "ready",
        True,
    )
    assert body["uploaded_by_email"] == "admin@acme.test"
    # Ready at once: no validation needed for content already judged.
    got = details(auth, file_id)
    assert (got["version"], got["status"], got["size"]) == (3, "ready", len(V1))
    assert download(auth, file_id) == V1
    assert [v["version"] for v in versions_of(auth, file_id)] == [3, 2, 1]
    assert version_bytes(auth, file_id, 2) == V2
    assert version_bytes(auth, file_id, 1) == V1
    assert org_usage(auth)["used_bytes"] == 2 * len(V1) + len(V2)
    assert restore(auth, file_id, 7).status_code == 404


def test_only_the_uploader_or_an_admin_replaces_or_restores(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = with_versions(auth, worker, V1, V2)
    member = auth.another()
    assert member.register("member@acme.test", invite_code=auth.invite()).status_code == 201
    # A member sees the versions and may download them...
    assert [v["version"] for v in versions_of(member, file_id)] == [2, 1]
    assert version_bytes(member, file_id, 1) == V1
    # ...but neither adds one nor restores one of another's file.
    keys = set(stored_objects(app))
    response = send(member, "report.txt", V3, on_conflict="replace")
    assert (response.status_code, response.get_json()["code"]) == (403, "forbidden")
    assert (restore(member, file_id, 1).status_code, set(stored_objects(app))) == (403, keys)
    # Another organization sees nothing of them.
    other = auth.another()
    assert other.register("x@other.test", organization_name="Other").status_code == 201
    assert other.client.get(f"/api/files/{file_id}/versions").status_code == 404
    assert other.client.get(f"/api/files/{file_id}/versions/1/download").status_code == 404


def test_replace_over_tus(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    token = auth.token()
    file_id = with_versions(auth, worker, V1)
    headers = {**TUS, **bearer(token)}
    replace = base64.b64encode(b"replace").decode()
    created = auth.client.post(
        "/api/uploads",
        headers={
            **headers,
            "Upload-Length": str(len(V2)),
            "Upload-Metadata": f"{metadata('report.txt')},on_conflict {replace}",
        },
    )
    assert created.status_code == 201, created.get_json()
    url = created.headers["Location"]
    assert patch(auth.client, headers, url, 0, V2).status_code == 204
    # Still the same file, with a version pending.
    assert [(v["version"], v["status"]) for v in versions_of(auth, file_id)] == [
        (2, "pending"),
        (1, "ready"),
    ]
    worker()
    assert details(auth, file_id)["version"] == 2
    assert download(auth, file_id) == V2
    # The finished upload keeps answering HEAD, its bytes being the file's now.
    head = auth.client.head(url, headers=headers)
    assert head.status_code in (200, 204)
    assert head.headers["Upload-Offset"] == str(len(V2))
    assert auth.client.get("/api/files").get_json()["total"] == 1


def test_removing_a_file_removes_every_version_s_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = with_versions(auth, worker, V1, V2, V3)
    assert len(stored_objects(app)) == 3
    organization_id = org_usage(auth)["id"]
    # The removal for good that deleting from the trash and the purge run.
    with app.app_context():
        with write_transaction():
            row = db.session.get(File, file_id)
            assert row is not None
            removed = lifecycle.remove_files(organization_id, [row])
        lifecycle.after_removal(organization_id, removed)
        versions_left = db.session.scalars(select(FileVersion.id)).all()
        db.session.remove()
    assert versions_left == []
    assert stored_objects(app) == {}
    assert org_usage(auth)["used_bytes"] == 0
    assert auth.client.get(f"/api/files/{file_id}/versions").status_code == 404


def test_a_version_that_lost_its_job_is_queued_again_by_the_sweep(
    app: Flask, auth: Auth, redis: Any, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = with_versions(auth, worker, V1)
    uploaded(auth, "report.txt", V2, on_conflict="replace")
    get_queue(redis).empty()  # the job is lost (a Redis restored from an old snapshot)
    with app.app_context():
        requeued = requeue_stuck()
        version_id = db.session.scalar(select(FileVersion.id))
        db.session.remove()
    assert requeued == [version_id]
    worker()
    assert download(auth, file_id) == V2


def test_a_promoted_version_sends_file_version_added(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    with receiver([204]) as hook:
        created = auth.client.post(
            "/api/org/webhooks",
            json={"url": hook.url, "events": ["file.version_added"]},
            headers=auth.headers(),
        )
        assert created.status_code == 201, created.get_json()
        file_id = with_versions(auth, worker, V1, V2)
        assert restore(auth, file_id, 1).status_code == 201
        worker()
    events = [json.loads(request.body) for request in hook.received]
    assert [e["type"] for e in events] == ["file.version_added", "file.version_added"]
    assert [e["data"]["file"]["version"] for e in events] == [2, 3]
    # The file as its details give it once the restore made version 3.
    assert events[-1]["data"]["file"] == details(auth, file_id)


def test_version_bytes_stay_in_storage_as_the_rows_say(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = with_versions(auth, worker, V1, V2)
    with app.app_context():
        paths = db.session.scalars(select(FileVersion.file_path)).all()
        db.session.remove()
    (old,) = paths
    assert stored_bytes(app, old) == V1
    assert download(auth, file_id) == V2


def test_a_version_ready_before_the_one_the_file_answers_with_takes_its_place(
    app: Flask, auth: Auth, redis: Any, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = str(uploaded(auth, "report.txt", V1)["file_id"])
    assert uploaded(auth, "report.txt", V2, on_conflict="replace")["version"] == 2
    # Version 1's validation waits (a busy queue): version 2 is judged first.
    get_queue(redis).remove(job_id(file_id))
    worker()
    got = details(auth, file_id)
    assert (got["version"], got["status"]) == (2, "ready")
    assert download(auth, file_id) == V2
    # Version 1 is judged in its turn, as an older version.
    worker()
    assert [(v["version"], v["status"], v["current"]) for v in versions_of(auth, file_id)] == [
        (2, "ready", True),
        (1, "ready", False),
    ]
    assert version_bytes(auth, file_id, 1) == V1


def test_each_version_keeps_the_crc32_of_its_bytes(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """A zip takes a file's CRC-32 from its row: the row must hold that of the bytes it
    answers with, through a new version and a restore."""
    auth.register()
    file_id = with_versions(auth, worker, V1, V2)

    def crcs() -> tuple[int | None, dict[int, int | None]]:
        with app.app_context():
            current = db.session.scalar(select(File.crc32).where(File.id == file_id))
            rows = db.session.execute(
                select(FileVersion.version, FileVersion.crc32).where(FileVersion.file_id == file_id)
            ).all()
            db.session.remove()
        return current, {number: crc for number, crc in rows}

    assert crcs() == (zlib.crc32(V2), {1: zlib.crc32(V1)})
    assert restore(auth, file_id, 1).status_code == 201
    assert crcs() == (zlib.crc32(V1), {1: zlib.crc32(V1), 2: zlib.crc32(V2)})
    with zipfile.ZipFile(io.BytesIO(auth.client.get("/api/folders/root/download").data)) as zipped:
        assert zipped.testzip() is None
        assert zipped.read("report.txt") == V1
        assert zipped.getinfo("report.txt").CRC == zlib.crc32(V1)
