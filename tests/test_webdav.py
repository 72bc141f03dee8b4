"""WebDAV at /dav/: litmus's conformance suites, rclone syncing a tree up and down, and the
rules of Coffer (authentication, read-only tokens, quota, size limit, tenancy, validation,
versions, the trash and the activity record) holding for every change made through it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
import requests
from flask import Flask
from sqlalchemy import update

from app.models import Organization
from tests.support.client import Auth, bearer
from tests.support.database import run_sql
from tests.support.dav import Member, litmus, member, rclone, rclone_env
from tests.support.live import LiveServer
from tests.support.pipeline import text_bytes

PROPFIND_NAMES = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
    b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)


def hrefs(answer: requests.Response) -> list[str]:
    """The decoded paths a PROPFIND's multistatus lists."""
    assert answer.status_code == 207, answer.text
    return [
        unquote(response.findtext("{DAV:}href") or "")
        for response in ElementTree.fromstring(answer.content).iter("{DAV:}response")
    ]


def listed(session: requests.Session, url: str) -> list[str]:
    """The members a PROPFIND of Depth 1 lists at `url` (itself included)."""
    return hrefs(session.request("PROPFIND", url, headers={"Depth": "1"}, data=PROPFIND_NAMES))


def api(member_: Member) -> dict[str, str]:
    """Bearer headers of the member's write token, for the JSON API."""
    return bearer(member_.write)


# ---- conformance: litmus -------------------------------------------------------------------


def test_litmus_suites_pass_without_warnings(
    server: LiveServer, acme: Member, tmp_path: Path
) -> None:
    """litmus's basic, copymove, props, locks and http suites: every test passes, and none
    warns."""
    output = litmus(
        f"{server.url}/dav/", acme.email, acme.write, "basic copymove props locks http", tmp_path
    )
    summaries = re.findall(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed", output)
    assert [name for name, _run, _passed in summaries] == [
        "basic",
        "copymove",
        "props",
        "locks",
        "http",
    ], output
    assert all(run == passed for _name, run, passed in summaries), output
    assert "WARNING" not in output, output
    assert "SKIPPED" not in output, output


# ---- rclone ----------------------------------------------------------------------------------

TREE = {
    "top.txt": 3000,
    "Dokumente/Übersicht.txt": 5000,
    "Dokumente/日本語/メモ.txt": 700,
    "Dokumente/日本語/深い/ещё.txt": 1200,
    "Ñandú y café/a b.txt": 40,
    "Ñandú y café/gone.txt": 90,
}


def write_tree(root: Path, files: dict[str, int]) -> None:
    """Text files of these sizes under `root`."""
    for index, (name, size) in enumerate(files.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text_bytes(size, index))


def test_rclone_syncs_a_unicode_tree_and_deletions_go_to_the_trash(
    app: Flask, server: LiveServer, acme: Member, auth: Auth, tmp_path: Path
) -> None:
    """rclone sync up, check equal byte for byte; change and delete locally, sync, check;
    what was deleted is in Coffer's trash."""
    local = tmp_path / "local"
    write_tree(local, TREE)
    env = rclone_env("coffer", f"{server.url}/dav/", acme.email, acme.write, tmp_path)
    synced = rclone(env, "sync", str(local), "coffer:")
    assert synced.returncode == 0, synced.stderr
    checked = rclone(env, "check", "--download", str(local), "coffer:")
    assert checked.returncode == 0, checked.stderr

    (local / "top.txt").write_bytes(text_bytes(4321, 99))
    (local / "Ñandú y café" / "gone.txt").unlink()
    for name in ("ещё.txt",):
        (local / "Dokumente" / "日本語" / "深い" / name).unlink()
    (local / "Dokumente" / "日本語" / "深い").rmdir()
    (local / "new.txt").write_bytes(text_bytes(10, 7))
    synced = rclone(env, "sync", str(local), "coffer:")
    assert synced.returncode == 0, synced.stderr
    checked = rclone(env, "check", "--download", str(local), "coffer:")
    assert checked.returncode == 0, checked.stderr

    with app.test_client() as http:
        trash = http.get("/api/trash", headers=api(acme)).get_json()["items"]
        names = {item["name"] for item in trash}
        assert {"gone.txt"} <= names
        assert "ещё.txt" in names or "深い" in names
        top = http.get("/api/files?q=top.txt", headers=api(acme)).get_json()["files"]
        versions = http.get(f"/api/files/{top[0]['id']}/versions", headers=api(acme)).get_json()
    # The changed file was put onto its name: a new version, the old one kept.
    assert len(versions["versions"]) == 2


def test_a_read_token_remote_reads_but_cannot_write(
    server: LiveServer, acme: Member, tmp_path: Path
) -> None:
    """rclone with a read token lists and copies down; its copy up is refused (403)."""
    session = acme.session()
    assert session.put(f"{server.url}/dav/shared.txt", data=b"for everyone\n").status_code == 201
    local = tmp_path / "up"
    write_tree(local, {"mine.txt": 100})
    env = rclone_env("reader", f"{server.url}/dav/", acme.email, acme.read, tmp_path)
    listing = rclone(env, "lsf", "reader:")
    assert listing.returncode == 0 and "shared.txt" in listing.stdout, listing.stderr
    down = rclone(env, "copy", "reader:", str(tmp_path / "down"))
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "down" / "shared.txt").read_bytes() == b"for everyone\n"
    up = rclone(env, "copy", "--retries", "1", "--low-level-retries", "1", str(local), "reader:")
    assert up.returncode != 0
    assert "mine.txt" not in rclone(env, "lsf", "reader:").stdout

    reader = acme.session(read_only=True)
    base = f"{server.url}/dav"
    for method, path, extra in (
        ("PUT", "/x.txt", {"data": b"x"}),
        ("DELETE", "/shared.txt", {}),
        ("MKCOL", "/folder", {}),
        ("MOVE", "/shared.txt", {"headers": {"Destination": f"{base}/moved.txt"}}),
        ("COPY", "/shared.txt", {"headers": {"Destination": f"{base}/copied.txt"}}),
        ("PROPPATCH", "/shared.txt", {"data": b"<x/>"}),
        ("LOCK", "/shared.txt", {"data": LOCK_BODY}),
    ):
        refused = reader.request(method, base + path, **extra)
        assert refused.status_code == 403, (method, refused.text)
    assert listed(reader, f"{base}/") == ["/dav/", "/dav/shared.txt"]


# ---- authentication --------------------------------------------------------------------------


def test_basic_authentication_with_an_api_token_only(
    app: Flask, server: LiveServer, acme: Member, auth: Auth
) -> None:
    """No credentials, a wrong token, another member's token or a password are refused with a
    Basic challenge; a session cookie never authenticates WebDAV."""
    url = f"{server.url}/dav/"
    bare = requests.request("PROPFIND", url, headers={"Depth": "0"})
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"].startswith('Basic realm="Coffer"')
    for credentials in (
        (acme.email, "not-a-token"),
        (acme.email, Auth.password),
        ("someone@acme.test", acme.write),
    ):
        refused = requests.request("PROPFIND", url, auth=credentials, headers={"Depth": "0"})
        assert refused.status_code == 401, credentials
    browser = requests.Session()
    signed_in = browser.post(
        f"{server.url}/api/auth/login", json={"email": acme.email, "password": Auth.password}
    )
    assert signed_in.status_code == 200 and browser.cookies
    assert browser.request("PROPFIND", url, headers={"Depth": "0"}).status_code == 401
    # The email is compared as login compares it.
    upper = requests.request(
        "PROPFIND", url, auth=(acme.email.upper(), acme.write), headers={"Depth": "0"}
    )
    assert upper.status_code == 207


@pytest.mark.parametrize("app_overrides", [{"LOGIN_LIMIT_PER_EMAIL": "3 per minute"}])
def test_failed_attempts_are_limited_as_logins_are(server: LiveServer, acme: Member) -> None:
    """After LOGIN_LIMIT_PER_EMAIL failures, even the right token waits (429, Retry-After)."""
    url = f"{server.url}/dav/"
    for _ in range(3):
        wrong = requests.request(
            "PROPFIND", url, auth=(acme.email, "guess"), headers={"Depth": "0"}
        )
        assert wrong.status_code == 401
    limited = requests.request(
        "PROPFIND", url, auth=(acme.email, acme.write), headers={"Depth": "0"}
    )
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    # Successes are not counted: another member is not held up.


# ---- Coffer's rules --------------------------------------------------------------------------


def test_get_right_after_put_answers_the_bytes_put_to_their_uploader_only(
    app: Flask, server: LiveServer, acme: Member, auth: Auth, worker: Callable[[], None]
) -> None:
    """The uploader reads a file (and a new version) while it is being validated; another
    member sees it once it is ready; the etag becomes the SHA-256."""
    base = f"{server.url}/dav"
    session = acme.session()
    first, second = text_bytes(2000, 1), text_bytes(2500, 2)
    assert session.put(f"{base}/notes.txt", data=first).status_code == 201
    got = session.get(f"{base}/notes.txt")
    assert got.status_code == 200 and got.content == first

    colleague = auth.another()
    joined = colleague.register(email="bob@acme.test", invite_code=_invite(app, acme))
    assert joined.status_code == 201, joined.get_json()
    bob_token = colleague.token("bob")
    bob = requests.Session()
    bob.auth = ("bob@acme.test", bob_token)
    assert listed(bob, f"{base}/") == ["/dav/"]
    assert bob.get(f"{base}/notes.txt").status_code == 404

    worker()
    assert listed(bob, f"{base}/") == ["/dav/", "/dav/notes.txt"]
    assert bob.get(f"{base}/notes.txt").content == first
    import hashlib

    etag = session.head(f"{base}/notes.txt").headers["ETag"]
    assert etag == f'"{hashlib.sha256(first).hexdigest()}"'

    # A PUT onto the name: a new version, read back at once by its uploader only.
    assert session.put(f"{base}/notes.txt", data=second).status_code == 204
    assert session.get(f"{base}/notes.txt").content == second
    assert bob.get(f"{base}/notes.txt").content == first
    worker()
    assert bob.get(f"{base}/notes.txt").content == second


def _invite(app: Flask, who: Member) -> str:
    with app.test_client() as http:
        made = http.post("/api/org/invites", headers=api(who))
        assert made.status_code == 201, made.get_json()
        return str(made.get_json()["invite_code"])


def test_a_file_failing_validation_leaves_the_listing_with_its_reason_recorded(
    app: Flask, server: LiveServer, acme: Member, worker: Callable[[], None]
) -> None:
    """Text put as a .png fails validation: it is no longer listed, and the activity record
    says why."""
    base = f"{server.url}/dav"
    session = acme.session()
    assert session.put(f"{base}/picture.png", data=text_bytes(500, 3)).status_code == 201
    assert "/dav/picture.png" in listed(session, f"{base}/")
    worker()
    assert "/dav/picture.png" not in listed(session, f"{base}/")
    assert session.get(f"{base}/picture.png").status_code == 404
    with app.test_client() as http:
        events = http.get("/api/org/activity", headers=api(acme)).get_json()["events"]
    failed = [event for event in events if event["type"] == "file.failed"]
    assert failed and failed[0]["target"]["name"] == "picture.png"
    assert "image/png" in failed[0]["detail"] and "text/plain" in failed[0]["detail"]


@pytest.mark.parametrize("app_overrides", [{"MAX_FILE_SIZE_MB": 1}])
def test_the_size_limit_and_the_quota(app: Flask, server: LiveServer, acme: Member) -> None:
    """A PUT over MAX_FILE_SIZE is refused (413), whether its length is declared or not;
    one that does not fit the quota is refused with 507, and so is a COPY."""
    base = f"{server.url}/dav"
    session = acme.session()
    too_big = b"x" * (1024 * 1024 + 1)
    assert session.put(f"{base}/big.txt", data=too_big).status_code == 413
    chunked = session.put(f"{base}/big.txt", data=iter([too_big[:600_000], too_big[600_000:]]))
    assert chunked.status_code == 413
    assert session.get(f"{base}/big.txt").status_code == 404

    data = text_bytes(700 * 1024, 4)
    assert session.put(f"{base}/a.txt", data=data).status_code == 201
    with app.app_context():
        from app.extensions import db

        org_id = db.session.scalar(db.select(Organization.id).where(Organization.name == "Acme"))
    run_sql(app, update(Organization).where(Organization.id == org_id).values(storage_quota_mb=1))
    refused = session.put(f"{base}/b.txt", data=data)
    assert refused.status_code == 507
    copied = session.request("COPY", f"{base}/a.txt", headers={"Destination": f"{base}/c.txt"})
    assert copied.status_code == 507
    props = session.request(
        "PROPFIND",
        f"{base}/",
        headers={"Depth": "0"},
        data=b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
        b"<D:quota-used-bytes/><D:quota-available-bytes/></D:prop></D:propfind>",
    )
    used = int(re.search(r"quota-used-bytes>(\d+)<", props.text).group(1))  # type: ignore[union-attr]
    free = int(re.search(r"quota-available-bytes>(\d+)<", props.text).group(1))  # type: ignore[union-attr]
    assert (used, free) == (len(data), 1024 * 1024 - len(data))
    assert listed(session, f"{base}/") == ["/dav/", "/dav/a.txt"]


def test_another_organizations_paths_do_not_exist(
    server: LiveServer, acme: Member, auth: Auth
) -> None:
    """Globex sees none of Acme's folders, files, properties or locks."""
    globex = member(auth, "admin@globex.test", "Globex")
    base = f"{server.url}/dav"
    mine, theirs = acme.session(), globex.session()
    assert mine.request("MKCOL", f"{base}/Plans").status_code == 201
    assert mine.put(f"{base}/Plans/secret.txt", data=b"acme only\n").status_code == 201
    locked = mine.request("LOCK", f"{base}/Plans/secret.txt", data=LOCK_BODY)
    assert locked.status_code == 200
    assert listed(theirs, f"{base}/") == ["/dav/"]
    assert theirs.get(f"{base}/Plans/secret.txt").status_code == 404
    assert theirs.delete(f"{base}/Plans").status_code == 404
    # The same path in Globex is Globex's own, unlocked.
    assert theirs.request("MKCOL", f"{base}/Plans").status_code == 201
    assert theirs.put(f"{base}/Plans/secret.txt", data=b"globex\n").status_code == 201
    assert mine.get(f"{base}/Plans/secret.txt").content == b"acme only\n"


def test_the_activity_record_names_the_token(app: Flask, server: LiveServer, acme: Member) -> None:
    """Uploads, new versions, folders, moves, trashing and downloads through WebDAV are
    recorded as done by the token."""
    base = f"{server.url}/dav"
    session = acme.session()
    assert session.request("MKCOL", f"{base}/Box").status_code == 201
    assert session.put(f"{base}/Box/a.txt", data=b"one\n").status_code == 201
    assert session.put(f"{base}/Box/a.txt", data=b"two\n").status_code == 204
    assert session.get(f"{base}/Box/a.txt").content == b"two\n"
    moved = session.request("MOVE", f"{base}/Box/a.txt", headers={"Destination": f"{base}/b.txt"})
    assert moved.status_code == 201
    assert session.delete(f"{base}/b.txt").status_code == 204
    with app.test_client() as http:
        tokens = http.get("/api/tokens", headers=api(acme)).get_json()["tokens"]
        events = http.get("/api/org/activity", headers=api(acme)).get_json()["events"]
    token_id = next(token["id"] for token in tokens if token["name"] == "dav")
    mine = [
        event
        for event in events
        if event["actor"] == {"kind": "token", "id": token_id, "email": acme.email}
    ]
    types = {event["type"] for event in mine}
    assert {
        "folder.created",
        "file.uploaded",
        "file.version_added",
        "file.downloaded",
        "file.renamed",
        "file.moved",
        "file.trashed",
    } <= types, types
