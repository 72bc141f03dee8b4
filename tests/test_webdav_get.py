"""A WebDAV GET or HEAD of a file answers as the API's download does (the same builder):
exact bytes, ranges, the entity tag PROPFIND shows as `getetag` honoured by If-None-Match,
HEAD without a body, read tokens reading, other organizations' paths unseen, the uploader's
own file readable at once after its PUT, and each download recorded once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.storage import get_storage
from tests.support.client import Auth, bearer
from tests.support.dav import Member, member
from tests.support.pipeline import text_bytes

DATA = text_bytes(200_000, 11)


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    """A client of the app in this process: its answers are read whole and closed before
    it returns, so what the server does on close (the download's record) has happened."""
    return app.test_client()


def dav(
    http: FlaskClient, who: Member, method: str, path: str, *, read_only: bool = False, **kw: Any
) -> TestResponse:
    """A WebDAV request authenticated by Basic with one of the member's tokens."""
    token = who.read if read_only else who.write
    return http.open(f"/dav{path}", method=method, auth=(who.email, token), buffered=True, **kw)


def getetag(http: FlaskClient, who: Member, path: str) -> str:
    """The `getetag` a PROPFIND of Depth 0 answers for the path."""
    answer = dav(http, who, "PROPFIND", path, headers={"Depth": "0"})
    assert answer.status_code == 207, answer.text
    found = re.search(r"<(?:\w+:)?getetag>(.*?)</(?:\w+:)?getetag>", answer.text)
    assert found is not None, answer.text
    return found.group(1)


def downloads(http: FlaskClient, who: Member) -> list[dict[str, Any]]:
    """The organization's `file.downloaded` events, newest first."""
    page = http.get(
        "/api/org/activity", query_string={"type": "file.downloaded"}, headers=bearer(who.write)
    )
    assert page.status_code == 200
    events: list[dict[str, Any]] = page.get_json()["events"]
    return events


def test_a_get_answers_the_bytes_with_the_headers_clients_rely_on(
    http: FlaskClient, acme: Member
) -> None:
    """GET: the exact bytes, Content-Length, Accept-Ranges, Last-Modified, and the ETag a
    PROPFIND shows as getetag; a range 206, a range past the end 416 with the length."""
    assert dav(http, acme, "MKCOL", "/Docs").status_code == 201
    assert dav(http, acme, "PUT", "/Docs/a.txt", data=DATA).status_code == 201
    whole = dav(http, acme, "GET", "/Docs/a.txt")
    assert whole.status_code == 200
    assert whole.data == DATA
    assert whole.headers["Content-Length"] == str(len(DATA))
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"] == f'"{getetag(http, acme, "/Docs/a.txt")}"'
    assert whole.headers["Last-Modified"]
    assert whole.headers["Content-Type"] == "application/octet-stream"  # not validated yet
    part = dav(http, acme, "GET", "/Docs/a.txt", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.data == DATA[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    past = dav(http, acme, "GET", "/Docs/a.txt", headers={"Range": f"bytes={len(DATA)}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_if_none_match_with_the_getetag_answers_304_and_head_has_no_body(
    http: FlaskClient, acme: Member, worker: Any
) -> None:
    """The getetag (before and after validation) makes a conditional GET answer 304; a HEAD
    answers the length and type without the bytes."""
    assert dav(http, acme, "PUT", "/b.txt", data=DATA).status_code == 201
    pending = getetag(http, acme, "/b.txt")
    assert (
        dav(http, acme, "GET", "/b.txt", headers={"If-None-Match": f'"{pending}"'}).status_code
        == 304
    )
    worker()
    ready = getetag(http, acme, "/b.txt")
    assert ready != pending
    assert (
        dav(http, acme, "GET", "/b.txt", headers={"If-None-Match": f'"{pending}"'}).status_code
        == 200
    )
    unchanged = dav(http, acme, "GET", "/b.txt", headers={"If-None-Match": f'"{ready}"'})
    assert unchanged.status_code == 304 and unchanged.data == b""
    head = dav(http, acme, "HEAD", "/b.txt")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Content-Type"].startswith("text/plain")
    assert head.headers["ETag"] == f'"{ready}"'


def test_a_read_token_gets_and_another_organization_does_not(
    http: FlaskClient, acme: Member, auth: Auth
) -> None:
    """A read token reads a file; Globex's member asking for the same path gets 404, and no
    credentials get 401 with the challenge."""
    assert dav(http, acme, "PUT", "/plan.txt", data=b"acme's plan\n").status_code == 201
    read = dav(http, acme, "GET", "/plan.txt", read_only=True)
    assert read.status_code == 200 and read.data == b"acme's plan\n"
    globex = member(auth, "admin@globex.test", "Globex")
    assert dav(http, globex, "GET", "/plan.txt").status_code == 404
    assert dav(http, globex, "HEAD", "/plan.txt").status_code == 404
    anonymous = http.get("/dav/plan.txt")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")


def test_the_uploader_reads_a_new_version_at_once_and_a_colleague_the_ready_one(
    http: FlaskClient, acme: Member, worker: Any
) -> None:
    """Right after a PUT onto an existing file, its uploader reads the new bytes (still
    being validated); once validated, the ready ones are the same."""
    assert dav(http, acme, "PUT", "/c.txt", data=b"one\n").status_code == 201
    worker()
    assert dav(http, acme, "PUT", "/c.txt", data=b"two, longer\n").status_code == 204
    got = dav(http, acme, "GET", "/c.txt")
    assert got.status_code == 200 and got.data == b"two, longer\n"
    assert got.headers["Content-Length"] == str(len(b"two, longer\n"))
    worker()
    assert dav(http, acme, "GET", "/c.txt", read_only=True).data == b"two, longer\n"


def test_a_download_is_recorded_once(http: FlaskClient, acme: Member) -> None:
    """A whole GET is one `file.downloaded` event; a HEAD, a 304 and a range from the
    middle are none."""
    assert dav(http, acme, "PUT", "/d.txt", data=DATA).status_code == 201
    etag = getetag(http, acme, "/d.txt")
    assert dav(http, acme, "GET", "/d.txt").status_code == 200
    assert dav(http, acme, "HEAD", "/d.txt").status_code == 200
    assert (
        dav(http, acme, "GET", "/d.txt", headers={"If-None-Match": f'"{etag}"'}).status_code == 304
    )
    assert dav(http, acme, "GET", "/d.txt", headers={"Range": "bytes=10-19"}).status_code == 206
    events = downloads(http, acme)
    assert len(events) == 1
    assert events[0]["target"]["name"] == "d.txt"
    assert events[0]["actor"]["kind"] == "token"


def test_a_file_whose_bytes_are_gone_answers_410(
    app: Flask, http: FlaskClient, acme: Member, worker: Any
) -> None:
    """Bytes lost from storage outside Coffer: a GET answers 410 with the API's message,
    and records no download."""
    assert dav(http, acme, "PUT", "/lost.txt", data=b"figures\n").status_code == 201
    worker()
    listed = http.get("/api/files", headers=bearer(acme.write)).get_json()["files"]
    file_id = next(f["id"] for f in listed if f["filename"] == "lost.txt")
    organization = http.get("/api/org", headers=bearer(acme.write)).get_json()["id"]
    with app.app_context():
        get_storage().remove(f"{organization}/{file_id}/lost.txt")
    gone = dav(http, acme, "GET", "/lost.txt")
    assert gone.status_code == 410
    assert "missing from storage" in gone.text
    assert downloads(http, acme) == []
    # Deleted for good, so that the rows and the store agree again.
    assert dav(http, acme, "DELETE", "/lost.txt").status_code == 204
    assert http.delete(f"/api/trash/{file_id}", headers=bearer(acme.write)).status_code == 204
