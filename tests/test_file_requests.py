"""Upload-only links (file requests): who makes, lists and revokes them; a visitor without
an account sends files (the form and tus) into the link's folder, sees only their own,
within the link's expiry and files, the quota and the size limit; the record names the link."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app.extensions import db
from app.models import FileRequest, Organization, utcnow
from tests.support.client import Auth, multipart
from tests.support.tus import metadata

DATA = b"hello from a client\n" * 10


def make_request(auth: Auth, folder: str = "root", **body: Any) -> Any:
    """POST /api/folders/<folder>/requests as the logged-in user."""
    return auth.client.post(f"/api/folders/{folder}/requests", json=body, headers=auth.headers())


def link_path(auth: Auth, folder: str = "root", **body: Any) -> tuple[int, str]:
    """A new link's id and /r/<secret> path."""
    made = make_request(auth, folder, **body)
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"], urlsplit(made.get_json()["url"]).path


def visitor_token(visitor: FlaskClient, path: str) -> str:
    """Open the link's page as a visitor: the page's token."""
    page = visitor.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    assert found
    return found.group(1)


def send(visitor: FlaskClient, path: str, token: str, name: str, data: bytes = DATA) -> Any:
    """The page's script sending one file by the form."""
    body, content_type = multipart(name, data, "text/plain")
    return visitor.post(
        f"{path}/files", data=body, content_type=content_type, headers={"X-CSRF-Token": token}
    )


def org_id(auth: Auth) -> int:
    return int(auth.client.get("/api/org").get_json()["id"])


def test_any_member_makes_a_link_admins_see_and_revoke_all(app: Flask, auth: Auth) -> None:
    """A member makes links into folders; the list is an admin's all, a member's own; only
    the creator or an admin revokes."""
    auth.register()
    code = auth.invite()
    member = auth.another()
    member.register("member@acme.test", invite_code=code)
    folder = auth.client.post(
        "/api/folders", json={"name": "Inbox"}, headers=auth.headers()
    ).get_json()["id"]
    made = make_request(member, folder, max_files=3, message="Your scans, please")
    assert made.status_code == 201, made.get_json()
    issued = made.get_json()
    assert issued["url"].startswith("http://localhost/r/") and issued["max_files"] == 3
    admins_id, _ = link_path(auth)
    assert make_request(auth, "not-a-folder").status_code == 404
    assert make_request(auth, max_files=0).status_code == 400

    mine = member.client.get("/api/org/requests").get_json()["requests"]
    assert [r["id"] for r in mine] == [issued["id"]]
    assert mine[0]["path"] == "/Inbox" and mine[0]["message"] == "Your scans, please"
    assert "url" not in mine[0] and mine[0]["usable"] is True
    every = auth.client.get("/api/org/requests").get_json()["requests"]
    assert [r["id"] for r in every] == [admins_id, issued["id"]]

    refused = member.client.delete(f"/api/requests/{admins_id}", headers=member.headers())
    assert refused.status_code == 403
    assert (
        member.client.delete(f"/api/requests/{issued['id']}", headers=member.headers()).status_code
        == 204
    )
    assert (
        auth.client.delete(f"/api/requests/{admins_id}", headers=auth.headers()).status_code == 204
    )
    assert auth.client.get("/api/org/requests").get_json()["requests"] == []
    other = auth.another()
    other.register("x@other.test", organization_name="Other")
    assert (
        other.client.delete(f"/api/requests/{admins_id}", headers=other.headers()).status_code
        == 404
    )


def test_a_visitor_sends_files_into_the_folder_and_sees_only_theirs(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """Files sent by the form land in the link's folder, credited to the link; a taken name
    is numbered, yet the visitor sees the name they sent; another browser sees nothing and
    any other file's status is 404."""
    auth.register()
    folder = auth.client.post(
        "/api/folders", json={"name": "Inbox"}, headers=auth.headers()
    ).get_json()["id"]
    own = auth.upload("secret.txt", b"private\n").get_json()["file_id"]
    request_id, path = link_path(auth, folder)
    # Another file named as the visitor's, in the link's folder.
    body, content_type = multipart(
        "report.txt", b"already here\n", "text/plain", {"folder_id": folder}
    )
    assert (
        auth.client.post(
            "/api/files/upload", data=body, content_type=content_type, headers=auth.headers()
        ).status_code
        == 201
    )

    visitor = app.test_client()
    token = visitor_token(visitor, path)
    sent = send(visitor, path, token, "report.txt")
    assert sent.status_code == 201, sent.get_json()
    file_id = sent.get_json()["id"]
    assert sent.get_json()["name"] == "report.txt"
    worker()

    details = auth.client.get(f"/api/files/{file_id}").get_json()
    assert details["uploaded_via_request"] == request_id
    assert details["uploaded_by_email"] is None
    assert details["folder_id"] == folder and details["filename"] == "report (2).txt"
    listed = auth.client.get(f"/api/files?folder_id={folder}").get_json()["files"]
    assert {f["id"]: f["uploaded_via_request"] for f in listed}[file_id] == request_id

    mine = visitor.get(f"{path}/files").get_json()["files"]
    assert mine == [
        {
            "id": file_id,
            "name": "report.txt",
            "status": "ready",
            "size": len(DATA),
            "received": len(DATA),
            "error": None,
        }
    ]
    assert visitor.get(f"{path}/files/{file_id}").status_code == 200
    assert visitor.get(f"{path}/files/{own}").status_code == 404
    page = visitor.get(path).get_data(as_text=True)
    assert "report.txt" in page and "report (2)" not in page and "secret.txt" not in page
    # The visitor's session is not an account: the API stays closed to it.
    assert visitor.get("/api/files").status_code == 401

    stranger = app.test_client()
    visitor_token(stranger, path)
    assert stranger.get(f"{path}/files").get_json() == {"files": []}
    assert stranger.get(f"{path}/files/{file_id}").status_code == 404

    events = auth.client.get("/api/org/activity?type=file.uploaded").get_json()["events"]
    assert events[0]["actor"] == {"kind": "request", "id": request_id, "email": None}
    assert events[0]["target"]["id"] == file_id
    created = auth.client.get("/api/org/activity?type=request.created").get_json()["events"]
    assert created[0]["target"] == {"kind": "request", "id": str(request_id), "name": "/Inbox"}


def test_a_large_file_goes_resumable_through_the_link(
    app: Flask, auth: Auth, worker: Callable[[], None]
) -> None:
    """tus through the link: creation, HEAD, PATCHes; the file is the link's; another
    browser may not touch the upload."""
    auth.register()
    request_id, path = link_path(auth)
    visitor = app.test_client()
    token = visitor_token(visitor, path)
    headers = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": token}
    data = b"0123456789abcdef" * 1000
    created = visitor.post(
        f"{path}/uploads",
        headers={
            **headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata("big.bin"),
        },
    )
    assert created.status_code == 201, created.get_json()
    url = created.headers["Location"]
    assert url.startswith(f"{path}/uploads/")
    upload_id = url.rsplit("/", 1)[1]
    assert visitor.get(f"{path}/files").get_json()["files"][0]["status"] == "uploading"

    stranger = app.test_client()
    other_token = visitor_token(stranger, path)
    assert stranger.open(url, method="HEAD", headers={"Tus-Resumable": "1.0.0"}).status_code == 404

    half = len(data) // 2
    for offset, piece in ((0, data[:half]), (half, data[half:])):
        answer = visitor.patch(
            url,
            data=piece,
            headers={
                **headers,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert answer.status_code == 204, answer.get_data(as_text=True)
        assert answer.headers["Upload-Offset"] == str(offset + len(piece))
    assert (
        stranger.patch(
            url,
            data=b"x",
            headers={
                "Tus-Resumable": "1.0.0",
                "X-CSRF-Token": other_token,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        ).status_code
        == 404
    )
    worker()
    details = auth.client.get(f"/api/files/{upload_id}").get_json()
    assert details["uploaded_via_request"] == request_id and details["size"] == len(data)
    assert details["uploaded_by_email"] is None and details["status"] == "ready"
    events = auth.client.get("/api/org/activity?type=file.uploaded").get_json()["events"]
    assert events[0]["actor"]["kind"] == "request" and events[0]["actor"]["id"] == request_id


def test_the_links_limits_expiry_files_quota_and_token(app: Flask, auth: Auth) -> None:
    """max_files counts every file taken; an expired or revoked link is a friendly 404
    page; the quota refuses (507); a send without the page's token is refused."""
    auth.register()
    request_id, path = link_path(auth, max_files=1)
    visitor = app.test_client()
    token = visitor_token(visitor, path)
    assert send(visitor, path, "not the token", "a.txt").status_code == 400
    assert send(visitor, path, token, "a.txt").status_code == 201
    spent = send(visitor, path, token, "b.txt")
    assert spent.status_code == 404 and spent.get_json()["code"] == "not_found"
    page = visitor.get(path)
    assert page.status_code == 404 and "This link takes no files" in page.get_data(as_text=True)
    listed = auth.client.get("/api/org/requests").get_json()["requests"]
    assert listed[0]["files_received"] == 1 and listed[0]["usable"] is False

    _, later = link_path(auth)
    token = visitor_token(visitor, later)
    with app.app_context():
        db.session.execute(
            update(FileRequest)
            .where(FileRequest.secret_hash.is_not(None), FileRequest.id != request_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        db.session.remove()
    assert visitor.get(later).status_code == 404
    assert send(visitor, later, token, "c.txt").status_code == 404

    revoked_id, revoked = link_path(auth)
    token = visitor_token(visitor, revoked)
    organization = org_id(auth)
    with app.app_context():
        db.session.execute(
            update(Organization).where(Organization.id == organization).values(storage_quota_mb=0)
        )
        db.session.commit()
        db.session.remove()
    full = send(visitor, revoked, token, "d.txt")
    assert full.status_code == 507 and full.get_json()["code"] == "quota_exceeded"
    tus = visitor.post(
        f"{revoked}/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "X-CSRF-Token": token,
            "Upload-Length": "10",
            "Upload-Metadata": metadata("e.bin"),
        },
    )
    assert tus.status_code == 507
    assert (
        auth.client.delete(f"/api/requests/{revoked_id}", headers=auth.headers()).status_code == 204
    )
    assert visitor.get(revoked).status_code == 404


def test_unknown_links_are_one_404(client: FlaskClient) -> None:
    """Any secret that opens nothing gets the same page."""
    for secret in ("nope", "x" * 43, "y" * 500):
        page = client.get(f"/r/{secret}")
        assert page.status_code == 404
        assert "This link takes no files" in page.get_data(as_text=True)
