"""Deleting files: who may, that a deleted file goes to the trash (gone from sight, its
bytes and quota kept), and that deleting it from the trash frees both at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update

from app.models import Organization
from tests.support.client import Auth, multipart, usage
from tests.support.database import run_sql
from tests.support.storage import stored_bytes, stored_objects
from tests.support.trash import delete_forever, trash_ids


def upload(auth: Auth, filename: str, data: bytes) -> str:
    """Upload a file and return its id."""
    response = auth.upload(filename, data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["file_id"]


def stored_files(app: Flask) -> set[str]:
    """The key of every stored object (in-flight uploads aside), through the backend."""
    return set(stored_objects(app))


def delete(auth: Auth, file_id: str) -> tuple[int, dict | None]:
    """DELETE a file as this user; (status, JSON body or None)."""
    response = auth.client.delete(f"/api/files/{file_id}", headers=auth.headers())
    return response.status_code, response.get_json(silent=True)


@pytest.fixture
def member(app: Flask, auth: Auth) -> Auth:
    """A member of the admin's organization (the admin registers first)."""
    assert auth.register().status_code == 201
    code = auth.invite()
    person = auth.another()
    assert person.register("mia@acme.test", "Acme", invite_code=code).status_code == 201
    return person


def test_delete_moves_to_the_trash_and_deleting_it_there_frees_bytes_and_quota(
    app: Flask, auth: Auth
) -> None:
    auth.register()
    keep = upload(auth, "keep.txt", b"k" * 100)
    gone = upload(auth, "gone.txt", b"g" * 250)
    assert usage(auth) == (350, 2)
    assert len(stored_files(app)) == 2

    response = auth.client.delete(f"/api/files/{gone}", headers=auth.headers())

    assert response.status_code == 204
    assert response.data == b""
    # Out of sight, but its bytes are kept (and counted) until it leaves the trash.
    assert auth.client.get(f"/api/files/{gone}").status_code == 404
    listed = auth.client.get("/api/files").get_json()
    assert [f["id"] for f in listed["files"]] == [keep]
    assert listed["total"] == 1
    assert usage(auth) == (350, 1)
    assert len(stored_files(app)) == 2
    assert delete(auth, gone)[0] == 404
    assert trash_ids(auth) == [gone]

    assert delete_forever(auth, gone)[0] == 204

    assert usage(auth) == (100, 1)
    assert [stored_bytes(app, key) for key in stored_files(app)] == [b"k" * 100]
    if app.config["STORAGE_BACKEND"] == "local":
        # The per-file folder goes too (folders are a local-disk matter).
        org_id = auth.client.get("/api/org").get_json()["id"]
        assert not (Path(app.config["UPLOAD_FOLDER"]) / str(org_id) / gone).exists()
    assert trash_ids(auth) == []
    assert delete_forever(auth, gone)[0] == 404


def test_delete_of_a_validated_file(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    auth.register()
    file_id = upload(auth, "ready.txt", b"ready\n")
    worker()
    assert auth.client.get(f"/api/files/{file_id}").get_json()["status"] == "ready"

    assert delete(auth, file_id)[0] == 204
    assert usage(auth) == (6, 0)
    assert delete_forever(auth, file_id)[0] == 204
    assert usage(auth) == (0, 0)
    assert stored_files(app) == set()


def upload_in_memory(auth: Auth, filename: str, data: bytes) -> int:
    """Upload with the multipart body built in memory; returns the status code.

    The test client spools bodies over 500 KiB that it encodes itself to a temporary
    file it never closes.
    """
    body, content_type = multipart(filename, data)
    response = auth.client.post(
        "/api/files/upload", data=body, headers=auth.headers(), content_type=content_type
    )
    return response.status_code


def test_quota_is_freed_once_the_file_leaves_the_trash(app: Flask, auth: Auth) -> None:
    auth.register()
    org_id = auth.client.get("/api/org").get_json()["id"]
    run_sql(app, update(Organization).where(Organization.id == org_id).values(storage_quota_mb=1))
    big = b"x" * (700 * 1024)
    assert upload_in_memory(auth, "first.bin", big) == 201
    first = auth.client.get("/api/files").get_json()["files"][0]["id"]
    assert upload_in_memory(auth, "second.bin", big) == 507

    assert delete(auth, first)[0] == 204
    # In the trash, it still holds its bytes.
    assert upload_in_memory(auth, "second.bin", big) == 507

    assert delete_forever(auth, first)[0] == 204
    assert upload_in_memory(auth, "second.bin", big) == 201
    assert usage(auth) == (len(big), 1)


def test_member_cannot_delete_another_members_file(app: Flask, auth: Auth, member: Auth) -> None:
    admins = upload(auth, "admin.txt", b"admin's")

    status, body = delete(member, admins)

    assert status == 403
    assert body is not None and body["code"] == "forbidden"
    assert auth.client.get(f"/api/files/{admins}").status_code == 200
    assert usage(auth) == (7, 1)
    assert len(stored_files(app)) == 1
    assert trash_ids(auth) == []


def test_member_can_delete_their_own_file(app: Flask, auth: Auth, member: Auth) -> None:
    own = upload(member, "mine.txt", b"member's")

    assert delete(member, own)[0] == 204
    assert usage(auth) == (8, 0)
    assert trash_ids(member) == [own]
    assert delete_forever(member, own)[0] == 204
    assert usage(auth) == (0, 0)
    assert stored_files(app) == set()


def test_admin_can_delete_anyones_file(app: Flask, auth: Auth, member: Auth) -> None:
    theirs = upload(member, "theirs.txt", b"member's")

    assert delete(auth, theirs)[0] == 204
    assert member.client.get(f"/api/files/{theirs}").status_code == 404
    assert trash_ids(auth) == [theirs]
    assert delete_forever(auth, theirs)[0] == 204
    assert usage(member) == (0, 0)


def test_delete_of_unknown_ids_is_404(app: Flask, auth: Auth) -> None:
    auth.register()
    upload(auth, "stays.txt", b"stays")

    for file_id in (str(uuid.uuid4()), "nope", "1"):
        status, body = delete(auth, file_id)
        assert status == 404
        assert body is not None and body["code"] == "not_found"
    assert usage(auth) == (5, 1)


def test_cookie_delete_without_csrf_token_is_refused(app: Flask, auth: Auth) -> None:
    auth.register()
    file_id = upload(auth, "stays.txt", b"stays")

    response = auth.client.delete(f"/api/files/{file_id}")

    assert response.status_code == 400
    assert response.get_json()["code"] == "csrf_failed"
    assert usage(auth) == (5, 1)


def test_bearer_token_delete_needs_no_csrf_token(app: Flask, auth: Auth) -> None:
    auth.register()
    file_id = upload(auth, "scripted.txt", b"scripted")
    token = auth.token()

    response = app.test_client().delete(
        f"/api/files/{file_id}", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 204
    assert usage(auth) == (8, 0)
    assert trash_ids(auth) == [file_id]


def test_delete_needs_authentication(app: Flask, auth: Auth) -> None:
    auth.register()
    file_id = upload(auth, "stays.txt", b"stays")

    response = app.test_client().delete(f"/api/files/{file_id}")

    assert response.status_code == 401
    assert usage(auth) == (5, 1)
