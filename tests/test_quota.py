"""The storage quota: exact at the edge, and never passed by concurrent uploads."""

from __future__ import annotations

import io
import threading
from typing import Any

from flask import Flask
from sqlalchemy import update

from app.extensions import db
from app.models import Organization
from tests.support.client import Auth, usage
from tests.support.storage import stored_objects

MiB = 1024 * 1024
THREADS = 16


def set_quota(app: Flask, auth: Auth, megabytes: int) -> None:
    """Give the caller's organization a quota of `megabytes` MiB.

    In a short app context of its own: requests made while a test holds one would
    share it, and with it Flask-Login's cached user and the session's identity map.
    """
    org_id = auth.client.get("/api/org").get_json()["id"]
    with app.app_context():
        db.session.execute(
            update(Organization).where(Organization.id == org_id).values(storage_quota_mb=megabytes)
        )
        db.session.commit()
        db.session.remove()


def stored_sizes(app: Flask) -> list[int]:
    """Sizes of every stored object (in-flight uploads aside), through the backend."""
    return list(stored_objects(app).values())


def concurrent_uploads(app: Flask, tokens: list[str], sizes: list[int]) -> list[tuple[int, Any]]:
    """Upload one file per thread, all released at once; (status, body) per thread."""
    barrier = threading.Barrier(len(sizes))
    results: list[tuple[int, Any] | None] = [None] * len(sizes)
    errors: list[BaseException] = []

    def send(index: int) -> None:
        try:
            client = app.test_client()
            data = bytes([index % 256]) * sizes[index]
            barrier.wait(timeout=30)
            response = client.post(
                "/api/files/upload",
                data={"file": (io.BytesIO(data), f"part-{index}.bin")},
                headers={"Authorization": f"Bearer {tokens[index]}"},
                content_type="multipart/form-data",
            )
            results[index] = (response.status_code, response.get_json())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_upload_filling_the_quota_exactly_is_accepted(app: Flask, auth: Auth) -> None:
    auth.register()
    set_quota(app, auth, 1)
    quarter = MiB // 4
    answers = [auth.upload(f"q{n}.bin", bytes([n]) * quarter).status_code for n in range(4)]

    assert answers == [201, 201, 201, 201]
    assert usage(auth) == (MiB, 4)

    over = auth.upload("one-more-byte.bin", b"c")

    assert over.status_code == 507
    body = over.get_json()
    assert body["code"] == "quota_exceeded"
    assert "(1 B)" in body["error"] and "1 MiB of 1 MiB used" in body["error"], body["error"]
    assert usage(auth) == (MiB, 4)
    assert sorted(stored_sizes(app)) == [quarter] * 4


def test_quota_is_per_organization(app: Flask, auth: Auth) -> None:
    auth.register()
    set_quota(app, auth, 0)
    other = auth.another()
    assert other.register("bo@beta.test", "Beta").status_code == 201

    assert auth.upload("full.txt", b"x").status_code == 507
    assert other.upload("room.txt", b"x").status_code == 201
    assert usage(auth) == (0, 0)
    assert usage(other) == (1, 1)


def test_concurrent_uploads_never_pass_the_quota(app: Flask, auth: Auth) -> None:
    auth.register()
    set_quota(app, auth, 1)
    tokens = [auth.token(f"uploader-{n}") for n in range(THREADS)]
    # Five of these fit in 1 MiB, a sixth does not.
    size = 200_000

    results = concurrent_uploads(app, tokens, [size] * THREADS)

    accepted = [body for status, body in results if status == 201]
    refused = [(status, body) for status, body in results if status != 201]
    assert len(accepted) == 5
    assert sum(body["size"] for body in accepted) <= MiB
    assert all(status == 507 and body["code"] == "quota_exceeded" for status, body in refused)
    assert usage(auth) == (5 * size, 5)
    assert sorted(stored_sizes(app)) == [size] * 5
    listed = auth.client.get("/api/files").get_json()
    assert {f["id"] for f in listed["files"]} == {body["file_id"] for body in accepted}


def test_concurrent_uploads_of_mixed_sizes_never_pass_the_quota(app: Flask, auth: Auth) -> None:
    auth.register()
    set_quota(app, auth, 1)
    tokens = [auth.token(f"uploader-{n}") for n in range(THREADS)]
    sizes = [90_000 + 23_000 * n for n in range(THREADS)]  # 4.6 MiB in all

    results = concurrent_uploads(app, tokens, sizes)

    accepted = [body["size"] for status, body in results if status == 201]
    refused = [(status, body) for status, body in results if status != 201]
    assert accepted, "at least the first upload to reach the database fits"
    assert sum(accepted) <= MiB
    assert refused
    assert all(status == 507 and body["code"] == "quota_exceeded" for status, body in refused)
    used, count = usage(auth)
    assert (used, count) == (sum(accepted), len(accepted))
    assert sorted(stored_sizes(app)) == sorted(accepted)
    # Every refusal was right: even the smallest refused file did not fit next to the rest
    # of the accepted ones.
    smallest_refused = min(sizes[i] for i, (status, _) in enumerate(results) if status != 201)
    assert used + smallest_refused > MiB or len(accepted) == THREADS
