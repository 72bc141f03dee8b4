"""Share links: made for ready files, downloaded without an account exactly as the download
endpoint answers, counted, spent, expired, revoked, and gone with their file."""

from __future__ import annotations

import hashlib
import threading
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.extensions import db as _db
from app.models import ShareLink, utcnow
from tests.support.client import Auth, bearer
from tests.support.database import run_sql
from tests.support.storage import STORAGE_BACKEND

DATA = b"0123456789" * 100 + b"the end\n"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    """On an s3 run, downloads answer with presigned URLs: share links must too."""
    return {"S3_PRESIGNED_DOWNLOADS": True} if STORAGE_BACKEND == "s3" else {}


def ready_file(auth: Auth, worker: Callable[[], None], name: str = "notes.txt") -> str:
    """Upload a text file and validate it; its id."""
    response = auth.upload(name, DATA)
    assert response.status_code == 201, response.get_json()
    worker()
    return str(response.get_json()["file_id"])


def make_link(auth: Auth, file_id: str, **body: Any) -> Any:
    """POST /api/files/<id>/links as the logged-in user."""
    return auth.client.post(f"/api/files/{file_id}/links", json=body, headers=auth.headers())


def secret_path(url: str) -> str:
    """The /s/<secret> path of a link's absolute URL."""
    return urlsplit(url).path


def fetch(client: FlaskClient, path: str, **headers: str) -> Any:
    """GET a share link with no credentials at all; the body read and the answer closed."""
    response = client.get(path, headers=headers)
    response.get_data()
    response.close()
    return response


def downloads_of(auth: Auth, file_id: str) -> list[int]:
    """The `downloads` of a file's live links, oldest first."""
    response = auth.client.get(f"/api/files/{file_id}/links")
    assert response.status_code == 200, response.get_json()
    return [link["downloads"] for link in response.get_json()["links"]]


def assert_gone(response: Any) -> None:
    """The one 404 every unusable link gets."""
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "share link not found, expired or revoked",
        "code": "not_found",
    }


def test_a_links_whole_life(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    """Create, download anonymously (whole, by range, conditionally), count, spend."""
    auth.register()
    file_id = ready_file(auth, worker)
    created = make_link(auth, file_id, max_downloads=2, expires_in=3600)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert set(body) == {"id", "url", "expires_at", "max_downloads", "path"}
    assert body["path"] == "/notes.txt"
    assert body["url"].startswith("http://localhost/s/")
    assert body["max_downloads"] == 2
    path = secret_path(body["url"])
    secret = path.rsplit("/", 1)[1]
    assert len(secret) >= 43  # 256 random bits, URL-safe base64

    # The list never shows the secret; the database holds only its hash.
    (listed,) = auth.client.get(f"/api/files/{file_id}/links").get_json()["links"]
    assert listed == {
        "id": body["id"],
        "created_at": listed["created_at"],
        "expires_at": body["expires_at"],
        "max_downloads": 2,
        "downloads": 0,
        "path": "/notes.txt",
    }
    with app.app_context():
        stored = _db.session.scalars(select(ShareLink)).one()
        assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        _db.session.remove()

    anonymous = app.test_client()
    if STORAGE_BACKEND == "s3":
        # Presigned downloads: the link answers the same 302 the download endpoint does.
        first = fetch(anonymous, path)
        assert first.status_code == 302
        with urllib.request.urlopen(first.headers["Location"], timeout=10) as fetched:
            assert fetched.read() == DATA
        assert downloads_of(auth, file_id) == [1]
    else:
        # A range counts as a download: it sends bytes of the file.
        head = fetch(anonymous, path, Range="bytes=0-9")
        assert head.status_code == 206
        assert head.data == DATA[:10]
        assert head.headers["Content-Range"] == f"bytes 0-9/{len(DATA)}"
        assert downloads_of(auth, file_id) == [1]

        # A 304 does not count either.
        etag = head.headers["ETag"]
        assert fetch(anonymous, path, **{"If-None-Match": etag}).status_code == 304
        assert downloads_of(auth, file_id) == [1]

    # The whole file: the download endpoint's answer, byte for byte and header for header.
    whole = fetch(anonymous, path)
    direct = auth.client.get(f"/api/files/{file_id}/download")
    direct.close()
    assert whole.status_code == direct.status_code
    for name in ("Content-Disposition", "Content-Type", "X-Content-Type-Options", "ETag"):
        assert whole.headers.get(name) == direct.headers.get(name), name
    if STORAGE_BACKEND != "s3":
        assert whole.status_code == 200
        assert whole.data == DATA
        assert whole.headers["Content-Disposition"] == "attachment; filename=notes.txt"
        assert whole.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert whole.headers["X-Content-Type-Options"] == "nosniff"

    # Two downloads used: the link is spent, and no longer listed.
    assert_gone(fetch(anonymous, path))
    assert_gone(fetch(anonymous, path, Range="bytes=0-9"))
    assert downloads_of(auth, file_id) == []


@pytest.mark.parametrize("ranges", ["bytes=1-", "bytes=0-0", "bytes=-1", "bytes=5-9"])
def test_every_answer_with_bytes_counts_so_ranges_cannot_pass_the_limit(
    app: Flask, auth: Auth, worker: Callable[[], None], ranges: str
) -> None:
    """A link limited to one download answers one request with bytes, whatever its Range."""
    auth.register()
    file_id = ready_file(auth, worker)
    path = secret_path(make_link(auth, file_id, max_downloads=1).get_json()["url"])
    anonymous = app.test_client()
    answers = [fetch(anonymous, path, Range=ranges) for _ in range(5)]
    sent = [answer for answer in answers if answer.status_code in (200, 206, 302)]
    assert len(sent) == 1, [answer.status_code for answer in answers]
    assert answers[0] is sent[0]
    for refused in answers[1:]:
        assert_gone(refused)
    assert downloads_of(auth, file_id) == []


def test_a_head_or_a_304_sends_no_bytes_and_does_not_count(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """Checking a link (HEAD) or revalidating a copy (304) leaves its one download unused."""
    auth.register()
    file_id = ready_file(auth, worker)
    path = secret_path(make_link(auth, file_id, max_downloads=1).get_json()["url"])
    anonymous = app.test_client()
    checked = anonymous.head(path)
    checked.close()
    assert checked.status_code in (200, 302)
    etag = checked.headers.get("ETag")
    if etag is not None:
        assert fetch(anonymous, path, **{"If-None-Match": etag}).status_code == 304
    assert downloads_of(auth, file_id) == [0]
    assert fetch(anonymous, path).status_code in (200, 302)
    assert_gone(fetch(anonymous, path))


def test_an_unknown_secret_is_the_same_404(app: Flask, client: FlaskClient) -> None:
    assert_gone(fetch(client, "/s/" + "A" * 43))
    assert_gone(fetch(client, "/s/x"))
    assert_gone(fetch(client, "/s/" + "A" * 500))


def test_a_link_expires(app: Flask, auth: Auth, worker: Callable[[], None]) -> None:
    """Past its expires_in (the clock moved by setting expires_at back), the link is 404."""
    auth.register()
    file_id = ready_file(auth, worker)
    body = make_link(auth, file_id, expires_in=60).get_json()
    path = secret_path(body["url"])
    assert fetch(app.test_client(), path).status_code in (200, 302)

    run_sql(
        app,
        update(ShareLink)
        .where(ShareLink.id == body["id"])
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    assert_gone(fetch(app.test_client(), path))
    assert downloads_of(auth, file_id) == []


def test_defaults_and_limits_of_a_new_link(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """No body: 7 days and no download limit; PUBLIC_URL names the host when set."""
    auth.register()
    file_id = ready_file(auth, worker)
    before = utcnow()
    response = auth.client.post(f"/api/files/{file_id}/links", headers=auth.headers())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["max_downloads"] is None
    expires = body["expires_at"].rstrip("Z")
    from datetime import datetime

    lasts = datetime.fromisoformat(expires) - before
    assert timedelta(days=7) - timedelta(seconds=5) < lasts <= timedelta(days=7, seconds=5)

    app.config["PUBLIC_URL"] = "https://files.example.com"
    public = make_link(auth, file_id, expires_in=60).get_json()
    assert public["url"].startswith("https://files.example.com/s/")
    assert fetch(app.test_client(), secret_path(public["url"])).status_code in (200, 302)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 2_592_001}, "expires_in"),
        ({"expires_in": "3600"}, "expires_in"),
        ({"expires_in": 60.5}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"max_downloads": 0}, "max_downloads"),
        ({"max_downloads": -1}, "max_downloads"),
    ],
)
def test_bad_link_settings_are_400(
    app: Flask, auth: Auth, worker: Callable[[], None], body: dict[str, Any], field: str
) -> None:
    auth.register()
    file_id = ready_file(auth, worker)
    response = make_link(auth, file_id, **body)
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_field"
    assert response.get_json()["field"] == field


def test_the_bounds_of_expires_in_are_inclusive(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = ready_file(auth, worker)
    for seconds in (60, 2_592_000):
        assert make_link(auth, file_id, expires_in=seconds).status_code == 201


def test_a_file_not_ready_gets_no_link(app: Flask, auth: Auth) -> None:
    auth.register()
    file_id = auth.upload("notes.txt", DATA).get_json()["file_id"]
    response = make_link(auth, file_id)
    assert response.status_code == 409
    assert response.get_json()["code"] == "not_ready"
    assert response.get_json()["status"] == "pending"


def test_another_tenants_file_and_links_are_404(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = ready_file(auth, worker)
    link = make_link(auth, file_id).get_json()
    outsider = auth.another()
    outsider.register(email="eve@globex.test", organization_name="Globex")
    assert make_link(outsider, file_id).status_code == 404
    assert outsider.client.get(f"/api/files/{file_id}/links").status_code == 404
    revoke = outsider.client.delete(f"/api/links/{link['id']}", headers=outsider.headers())
    assert revoke.status_code == 404
    # The link itself still works: nothing the outsider did touched it.
    assert fetch(app.test_client(), secret_path(link["url"])).status_code in (200, 302)


def test_revoking_a_link_stops_it_at_once(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """The creator, the uploader or an admin may revoke; another member gets 403."""
    auth.register()
    member = auth.another()
    assert (
        member.register(
            email="bob@acme.test", organization_name="Acme", invite_code=auth.invite()
        ).status_code
        == 201
    )
    other = auth.another()
    assert (
        other.register(
            email="carol@acme.test", organization_name="Acme", invite_code=auth.invite()
        ).status_code
        == 201
    )
    file_id = ready_file(member, worker)
    by_member = make_link(member, file_id).get_json()
    by_admin = make_link(auth, file_id).get_json()

    refused = other.client.delete(f"/api/links/{by_member['id']}", headers=other.headers())
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "forbidden"

    # The uploader revokes the admin's link; the admin revokes the member's.
    token = member.token()
    assert (
        member.client.delete(f"/api/links/{by_admin['id']}", headers=bearer(token)).status_code
        == 204
    )
    assert (
        auth.client.delete(f"/api/links/{by_member['id']}", headers=auth.headers()).status_code
        == 204
    )
    for link in (by_member, by_admin):
        assert_gone(fetch(app.test_client(), secret_path(link["url"])))
    assert (
        auth.client.delete(f"/api/links/{by_member['id']}", headers=auth.headers()).status_code
        == 404
    )
    assert downloads_of(auth, file_id) == []


def test_deleting_the_file_revokes_its_links(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register()
    file_id = ready_file(auth, worker)
    link = make_link(auth, file_id).get_json()
    assert auth.client.delete(f"/api/files/{file_id}", headers=auth.headers()).status_code == 204
    assert_gone(fetch(app.test_client(), secret_path(link["url"])))
    # In the trash the link is kept (a restore brings it back, tests/test_trash.py); deleted
    # from the trash, it goes with the file.
    assert auth.client.delete(f"/api/trash/{file_id}", headers=auth.headers()).status_code == 204
    assert_gone(fetch(app.test_client(), secret_path(link["url"])))
    with app.app_context():
        assert _db.session.scalars(select(ShareLink)).all() == []
        _db.session.remove()


def test_a_one_download_link_raced_gives_one_download(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """Eight clients fetch a link of max_downloads 1 at once: one gets the file."""
    auth.register()
    file_id = ready_file(auth, worker)
    path = secret_path(make_link(auth, file_id, max_downloads=1).get_json()["url"])
    statuses: list[int] = []
    start = threading.Barrier(8)

    def download() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(fetch(client, path).status_code)

    threads = [threading.Thread(target=download) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == sorted([200 if STORAGE_BACKEND != "s3" else 302] + [404] * 7)


@pytest.mark.parametrize("app_overrides", [{"SHARE_LIMIT_PER_ADDRESS": "3 per minute"}])
def test_share_links_are_rate_limited_per_address(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        assert_gone(fetch(client, "/s/" + "B" * 43))
    limited = fetch(client, "/s/" + "C" * 43)
    assert limited.status_code == 429
    assert limited.get_json()["code"] == "rate_limited"
    assert "Retry-After" in limited.headers
    # Another address is not held back.
    other = app.test_client()
    assert_gone(other.get("/s/" + "C" * 43, environ_base={"REMOTE_ADDR": "192.0.2.7"}))


def test_a_link_needs_an_account_to_make_and_list(app: Flask, client: FlaskClient) -> None:
    file_id = "00000000-0000-4000-8000-000000000000"
    assert client.post(f"/api/files/{file_id}/links", json={}).status_code == 401
    assert client.get(f"/api/files/{file_id}/links").status_code == 401
    assert client.delete("/api/links/1").status_code == 401


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("", ""),
        ("https://files.example.com/", "https://files.example.com"),
        ("http://10.0.0.2:8080/coffer", "http://10.0.0.2:8080/coffer"),
    ],
)
def test_public_url_is_an_http_url_kept_without_its_trailing_slash(value: str, kept: str) -> None:
    from app.config import load_config

    assert load_config({"PUBLIC_URL": value})["PUBLIC_URL"] == kept


@pytest.mark.parametrize("value", ["files.example.com", "ftp://files.example.com", "https://"])
def test_a_public_url_that_is_no_http_url_stops_the_start(value: str) -> None:
    from app.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="^PUBLIC_URL must be an http:// or https:// URL"):
        load_config({"PUBLIC_URL": value})
