"""Previews: images and PDFs made by the test get a small and a large WebP after their
verdict, served by GET /api/files/<id>/thumbnail; undecodable and oversized ones stay ready
without; previews follow the current version and go with the file."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select, update

from app.database import write_transaction
from app.extensions import db
from app.files.previews import keys_of, owner_of
from app.models import File
from app.services.storage_check import check
from app.storage import get_storage
from tests.support.client import Auth, multipart
from tests.support.metrics import scrape, value
from tests.support.previews import (
    bomb_png,
    encoded,
    pdf,
    picture,
    rotated_jpeg,
    thumbnail,
    thumbnail_image,
    worker_peak_mib,
)
from tests.support.storage import check_storage_consistent, stored_objects
from tests.support.trash import delete, delete_forever

Worker = Callable[[], None]
MiB = 1024 * 1024


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """Room for the big pictures."""
    return {"MAX_FILE_SIZE_MB": 64}


def stored(auth: Auth, name: str, data: bytes, **fields: str) -> str:
    """Upload (cookie + CSRF), expecting 201; the file's id."""
    body, kind = multipart(name, data, "application/octet-stream", fields)
    response = auth.client.post(
        "/api/files/upload", data=body, headers=auth.headers(), content_type=kind
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["file_id"])


def details(auth: Auth, file_id: str) -> dict[str, Any]:
    """GET /api/files/<id>, expecting 200."""
    response = auth.client.get(f"/api/files/{file_id}")
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def preview_keys(app: Flask) -> set[str]:
    """Every stored preview image."""
    return {key for key in stored_objects(app) if owner_of(key) is not None}


FORMATS = {
    "photo.jpg": lambda: encoded(picture((1600, 1200)), "JPEG", quality=90),
    "drawing.png": lambda: encoded(picture((1600, 1200)).convert("RGBA"), "PNG"),
    "anim.gif": lambda: encoded(
        picture((1600, 1200)).convert("P"),
        "GIF",
        save_all=True,
        append_images=[picture((1600, 1200), (0, 0, 255)).convert("P")],
    ),
    "shot.webp": lambda: encoded(picture((1600, 1200)), "WEBP"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_image_format_gets_a_small_and_a_large_preview(
    app: Flask, auth: Auth, worker: Worker, name: str
) -> None:
    auth.register()
    file_id = stored(auth, name, FORMATS[name]())
    worker()

    assert details(auth, file_id)["status"] == "ready"
    assert details(auth, file_id)["preview"] is True
    listed = auth.client.get("/api/files").get_json()["files"]
    assert [f["preview"] for f in listed] == [True]
    assert thumbnail_image(auth, file_id).size == (256, 192)  # small by default
    assert thumbnail_image(auth, file_id, "large").size == (1024, 768)
    # The content's pixels, not a blank: the gradient runs from dark at the top down.
    large = thumbnail_image(auth, file_id, "large").convert("L")
    assert large.getpixel((512, 740)) > large.getpixel((512, 20)) + 50


def test_a_pdf_gets_a_preview_of_its_first_page(app: Flask, auth: Auth, worker: Worker) -> None:
    auth.register()
    file_id = stored(auth, "report.pdf", pdf(3))
    worker()

    assert details(auth, file_id)["preview"] is True
    small = thumbnail_image(auth, file_id)
    large = thumbnail_image(auth, file_id, "large")
    # A portrait letter page: 1024 high, the width in proportion.
    assert large.height == 1024 and 780 <= large.width <= 800
    assert small.height == 256 and small.width < 256


def test_the_thumbnail_is_cached_privately_and_answers_304_when_unchanged(
    app: Flask, auth: Auth, worker: Worker
) -> None:
    auth.register()
    file_id = stored(auth, "photo.jpg", FORMATS["photo.jpg"]())
    worker()

    first = thumbnail(auth, file_id)
    assert first.status_code == 200
    assert first.headers["Cache-Control"].startswith("private, max-age=")
    etag = first.headers["ETag"]
    again = auth.client.get(f"/api/files/{file_id}/thumbnail", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    wrong = thumbnail(auth, file_id, size="huge")
    assert wrong.status_code == 400 and wrong.get_json()["code"] == "invalid_size"


def test_exif_orientation_is_applied(app: Flask, auth: Auth, worker: Worker) -> None:
    auth.register()
    # Stored 400 wide and 200 high; Orientation 6 shows it turned, taller than wide.
    file_id = stored(auth, "turned.jpg", rotated_jpeg((400, 200)))
    worker()

    small = thumbnail_image(auth, file_id)
    assert small.height > small.width
    assert small.size == (128, 256)


def test_a_decompression_bomb_stays_ready_without_a_preview(
    app: Flask, auth: Auth, worker: Worker
) -> None:
    auth.register()
    bomb = stored(auth, "bomb.png", bomb_png())
    broken = stored(auth, "broken.jpg", encoded(picture((300, 200)), "JPEG")[:400])
    text = stored(auth, "notes.txt", b"no picture here\n")
    worker()

    for file_id in (bomb, broken, text):
        body = details(auth, file_id)
        assert (body["status"], body["preview"]) == ("ready", False), body
        response = thumbnail(auth, file_id)
        assert response.status_code == 404
        assert response.get_json()["code"] == "no_preview"
    assert preview_keys(app) == set()
    counted = scrape(auth.client)
    # The bomb's job skipped it and the broken JPEG's failed; the text file got no job.
    assert value(counted, "coffer_previews_total", outcome="skipped") == 1
    assert value(counted, "coffer_previews_total", outcome="failed") == 1
    assert value(counted, "coffer_previews_total", outcome="made") == 0


def test_another_tenants_or_a_trashed_files_thumbnail_is_not_found(
    app: Flask, auth: Auth, worker: Worker
) -> None:
    auth.register()
    file_id = stored(auth, "photo.jpg", FORMATS["photo.jpg"]())
    worker()
    assert thumbnail(auth, file_id).status_code == 200

    other = auth.another()
    other.register(email="eve@other.test", organization_name="Other")
    foreign = thumbnail(other, file_id)
    assert foreign.status_code == 404 and foreign.get_json()["code"] == "not_found"
    assert auth.client.get("/api/files/not-a-uuid/thumbnail").status_code == 404

    status, _ = delete(auth, f"/api/files/{file_id}")
    assert status == 204
    trashed = thumbnail(auth, file_id)
    assert trashed.status_code == 404 and trashed.get_json()["code"] == "not_found"


def test_a_new_version_gets_new_previews_and_the_old_ones_stay_with_their_version(
    app: Flask, auth: Auth, worker: Worker
) -> None:
    auth.register()
    file_id = stored(auth, "photo.jpg", encoded(picture((1600, 1200)), "JPEG"))
    worker()
    before = thumbnail(auth, file_id)
    assert before.status_code == 200

    newer = encoded(picture((1200, 1600), (0, 200, 0)), "JPEG")
    assert stored(auth, "photo.jpg", newer, on_conflict="replace") == file_id
    worker()

    after = thumbnail(auth, file_id)
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert Image.open(io.BytesIO(after.get_data())).size == (192, 256)
    # Two contents, each with its two images.
    assert len(preview_keys(app)) == 4
    check_storage_consistent(app)
    with app.app_context():
        assert check().problems_left == 0


def test_purging_a_file_removes_its_previews(app: Flask, auth: Auth, worker: Worker) -> None:
    auth.register()
    file_id = stored(auth, "photo.jpg", FORMATS["photo.jpg"]())
    worker()
    newer = encoded(picture((800, 600), (9, 9, 9)), "JPEG")
    stored(auth, "photo.jpg", newer, on_conflict="replace")
    worker()
    assert len(preview_keys(app)) == 4
    with app.app_context():
        report = check()
        assert (report.orphans, report.missing) == ([], [])

    status, _ = delete(auth, f"/api/files/{file_id}")
    assert status == 204
    status, _ = delete_forever(auth, file_id)
    assert status == 204

    assert preview_keys(app) == set()
    assert stored_objects(app) == {}


def test_backfill_makes_previews_for_files_stored_without(
    app: Flask, auth: Auth, worker: Worker
) -> None:
    auth.register()
    file_id = stored(auth, "photo.jpg", FORMATS["photo.jpg"]())
    worker()
    # As a file stored before previews came: no flag, no images.
    with app.app_context():
        path = db.session.scalar(select(File.file_path).where(File.id == file_id))
        get_storage().remove_many(keys_of(str(path)))
        with write_transaction() as session:
            session.execute(update(File).values(preview=False))
    assert thumbnail(auth, file_id).get_json()["code"] == "no_preview"

    result = app.test_cli_runner().invoke(args=["previews", "backfill", "--org", "Acme"])
    assert result.exit_code == 0, result.output
    assert "queued the previews of 1 file(s)" in result.output
    worker()

    assert details(auth, file_id)["preview"] is True
    assert thumbnail_image(auth, file_id, "large").size == (1024, 768)


def test_the_worker_stays_under_512_mib_for_huge_pictures(app: Flask, auth: Auth) -> None:
    auth.register()
    # 100 megapixels (a JPEG decodes at 1/8 scale) and 49 megapixels (a PNG decodes whole).
    photo = stored(auth, "huge.jpg", encoded(picture((10_000, 10_000)), "JPEG", quality=80))
    scan = stored(auth, "scan.png", encoded(picture((7_000, 7_000)), "PNG"))

    peak, output = worker_peak_mib(app, PREVIEW_MAX_PIXELS="120000000")

    assert peak < 512, output
    assert thumbnail_image(auth, photo, "large").size == (1024, 1024)
    assert thumbnail_image(auth, scan, "large").size == (1024, 1024)
    print(f"worker peak RSS: {peak} MiB")
