"""WebDAV's folder listings, empty files and lock index: a PROPFIND of Depth 1 answers every
property of every member as a PROPFIND of the member itself does; an empty PUT makes a
file, which the next PUT gives its bytes; locks are found without scanning Redis and go
when they expire."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import unquote
from xml.etree import ElementTree

import requests
from flask import Flask
from redis import Redis

from tests.support.client import bearer
from tests.support.dav import Member
from tests.support.live import LiveServer
from tests.support.pipeline import text_bytes

DAV = "{DAV:}"
ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
PROPNAME = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
# What rclone asks for, and a property nothing has.
NAMED = (
    b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:example:z"><D:prop>'
    b"<D:displayname/><D:getlastmodified/><D:getcontentlength/><D:resourcetype/>"
    b"<D:getcontenttype/><D:getetag/><D:quota-used-bytes/><D:lockdiscovery/>"
    b"<Z:colour/><Z:nothing/></D:prop></D:propfind>"
)
PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:example:z">'
    b"<D:set><D:prop><Z:colour>teal &amp; gold</Z:colour></D:prop></D:set></D:propertyupdate>"
)
LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
    b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>someone</D:owner></D:lockinfo>"
)

Properties = dict[str, tuple[str, str]]


def canonical(element: ElementTree.Element) -> str:
    """A property's value as comparable text: its children and text, prefixes aside."""
    children = "".join(
        f"{child.tag}|{(child.text or '').strip()}"
        for child in element.iter()
        if child is not element
    )
    return (element.text or "").strip() + children


def multistatus(answer: requests.Response) -> dict[str, Properties]:
    """A PROPFIND's answer: each href's properties, as (status, value)."""
    assert answer.status_code == 207, answer.text
    found: dict[str, Properties] = {}
    for response in ElementTree.fromstring(answer.content).iter(f"{DAV}response"):
        href = unquote(response.findtext(f"{DAV}href") or "")
        properties: Properties = {}
        for propstat in response.iter(f"{DAV}propstat"):
            status = (propstat.findtext(f"{DAV}status") or "").split(" ", 1)[1]
            prop = propstat.find(f"{DAV}prop")
            assert prop is not None
            for element in prop:
                properties[element.tag] = (status, canonical(element))
        found[href] = properties
    return found


def propfind(session: requests.Session, url: str, depth: str, body: bytes) -> requests.Response:
    """A PROPFIND of this depth and body."""
    return session.request("PROPFIND", url, headers={"Depth": depth}, data=body)


def without_timeouts(properties: Properties) -> Properties:
    """The properties with a lock's remaining seconds left out (they tick between two
    requests)."""
    lock = properties.get(f"{DAV}lockdiscovery")
    if lock is None:
        return properties
    kept = "".join(part for part in lock[1].split("Second-") if not part[:1].isdigit())
    return {**properties, f"{DAV}lockdiscovery": (lock[0], kept)}


def test_a_folder_listing_answers_every_property_as_each_member_does(
    app: Flask, server: LiveServer, acme: Member, worker: Callable[[], None]
) -> None:
    """Depth 1 of the top level and of a folder, in allprop, propname and named modes:
    every member's properties (live, quota, dead, locks) are those a PROPFIND of the member
    itself answers, and their values are the file's."""
    base = f"{server.url}/dav"
    session = acme.session()
    ready, pending, locked = text_bytes(3000, 1), text_bytes(700, 2), text_bytes(50, 3)
    assert session.request("MKCOL", f"{base}/Docs").status_code == 201
    assert session.request("MKCOL", f"{base}/Docs/Inner").status_code == 201
    assert session.put(f"{base}/Docs/ready & set.txt", data=ready).status_code == 201
    assert session.put(f"{base}/top.txt", data=ready).status_code == 201
    # No dead property and no lock: the listing writes such a file's answer in one piece.
    assert session.put(f"{base}/Docs/plain & <simple>.txt", data=ready).status_code == 201
    worker()
    assert session.put(f"{base}/Docs/pending.txt", data=pending).status_code == 201
    assert session.put(f"{base}/Docs/locked.txt", data=locked).status_code == 201
    patched = session.request("PROPPATCH", f"{base}/Docs/ready & set.txt", data=PROPPATCH)
    assert patched.status_code == 207
    lock = session.request(
        "LOCK", f"{base}/Docs/locked.txt", data=LOCK_BODY, headers={"Timeout": "Second-600"}
    )
    assert lock.status_code == 200
    token = lock.headers["Lock-Token"].strip("<>")

    for folder in ("/", "/Docs/"):
        for body in (ALLPROP, PROPNAME, NAMED):
            listing = multistatus(propfind(session, f"{base}{folder}", "1", body))
            assert f"/dav{folder}" in listing
            for href, properties in listing.items():
                alone = multistatus(propfind(session, f"{server.url}{href}", "0", body))
                assert without_timeouts(properties) == without_timeouts(alone[href]), href

    listing = multistatus(propfind(session, f"{base}/Docs/", "1", ALLPROP))
    assert sorted(listing) == [
        "/dav/Docs/",
        "/dav/Docs/Inner/",
        "/dav/Docs/locked.txt",
        "/dav/Docs/pending.txt",
        "/dav/Docs/plain & <simple>.txt",
        "/dav/Docs/ready & set.txt",
    ]
    done = listing["/dav/Docs/ready & set.txt"]
    assert done[f"{DAV}getetag"] == ("200 OK", hashlib.sha256(ready).hexdigest())
    assert done[f"{DAV}getcontentlength"] == ("200 OK", "3000")
    assert done[f"{DAV}getcontenttype"] == ("200 OK", "text/plain")
    assert done[f"{DAV}displayname"] == ("200 OK", "ready & set.txt")
    assert done["{urn:example:z}colour"] == ("200 OK", "teal & gold")
    assert done[f"{DAV}lockdiscovery"] == ("200 OK", "")
    with app.test_client() as http:
        files = http.get("/api/files?q=ready", headers=bearer(acme.write)).get_json()["files"]
        usage = http.get("/api/org", headers=bearer(acme.write)).get_json()
    uploaded = parsedate_to_datetime(done[f"{DAV}getlastmodified"][1])
    assert uploaded.strftime("%Y-%m-%dT%H:%M:%S") == files[0]["uploaded_at"][:19]
    # The uploader's own file being validated: its bytes, no type or hash yet.
    waiting = listing["/dav/Docs/pending.txt"]
    assert waiting[f"{DAV}getcontentlength"] == ("200 OK", "700")
    assert waiting[f"{DAV}getcontenttype"] == ("200 OK", "application/octet-stream")
    assert waiting[f"{DAV}getetag"][1].startswith("upload-")
    assert token in listing["/dav/Docs/locked.txt"][f"{DAV}lockdiscovery"][1]
    inner = listing["/dav/Docs/Inner/"]
    assert inner[f"{DAV}resourcetype"] == ("200 OK", f"{DAV}collection|")
    assert inner[f"{DAV}quota-used-bytes"] == ("200 OK", str(usage["used_bytes"]))
    assert f"{DAV}getcontentlength" not in inner
    named = multistatus(propfind(session, f"{base}/Docs/", "1", NAMED))
    assert named["/dav/Docs/ready & set.txt"]["{urn:example:z}nothing"][0] == "404 Not Found"
    assert named["/dav/Docs/ready & set.txt"][f"{DAV}quota-used-bytes"][0] == "404 Not Found"


def test_an_empty_put_makes_a_file_and_the_next_put_its_bytes(
    app: Flask, server: LiveServer, acme: Member, worker: Callable[[], None]
) -> None:
    """As Explorer, Finder and GNOME write a file: an empty PUT, then the bytes. The empty
    file is a ready file of 0 bytes (application/x-empty); the bytes become its newest
    version (the API's refusal of an empty upload stays: test_files_upload.py)."""
    base = f"{server.url}/dav"
    session = acme.session()
    made = session.put(f"{base}/new.txt", data=b"")
    assert made.status_code == 201, made.text
    listed = multistatus(propfind(session, f"{base}/", "1", ALLPROP))
    assert listed["/dav/new.txt"][f"{DAV}getcontentlength"] == ("200 OK", "0")
    assert session.get(f"{base}/new.txt").content == b""
    worker()
    with app.test_client() as http:
        files = http.get("/api/files?q=new.txt", headers=bearer(acme.write)).get_json()["files"]
        assert [(f["status"], f["size"], f["mime_type"]) for f in files] == [
            ("ready", 0, "application/x-empty")
        ]
    content = text_bytes(1500, 5)
    assert session.put(f"{base}/new.txt", data=content).status_code == 204
    assert session.get(f"{base}/new.txt").content == content
    worker()
    with app.test_client() as http:
        details = http.get(f"/api/files/{files[0]['id']}", headers=bearer(acme.write)).get_json()
        assert (details["status"], details["size"]) == ("ready", 1500)
        versions = http.get(
            f"/api/files/{files[0]['id']}/versions", headers=bearer(acme.write)
        ).get_json()["versions"]
        assert sorted(v["size"] for v in versions) == [0, 1500]


def commands(redis: Redis, *names: str) -> int:
    """How many times Redis ran these commands since its statistics were reset."""
    stats = redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


def test_locks_are_found_without_scanning_and_go_when_they_expire(
    app: Flask, server: LiveServer, acme: Member, redis: Redis
) -> None:
    """Locking, listing and writing under locks never scan Redis's keys (however many
    unrelated keys it holds); an expired lock is gone from the listing, from the index,
    and no longer stops a write."""
    base = f"{server.url}/dav"
    session = acme.session()
    index_key = f"coffer:dav:{organization_of(app, acme.email)}:locks"
    redis.mset({f"unrelated:{number}": b"x" for number in range(2000)})
    redis.config_resetstat()
    assert session.request("MKCOL", f"{base}/Box").status_code == 201
    assert session.put(f"{base}/Box/a.txt", data=b"held\n").status_code == 201
    held = session.request(
        "LOCK", f"{base}/Box/a.txt", data=LOCK_BODY, headers={"Timeout": "Second-600"}
    )
    assert held.status_code == 200
    brief = session.request(
        "LOCK", f"{base}/Box", data=LOCK_BODY, headers={"Timeout": "Second-1", "Depth": "0"}
    )
    assert brief.status_code == 200
    # Locked: a write without the token is refused, the folder too.
    assert session.put(f"{base}/Box/a.txt", data=b"other\n").status_code == 423
    assert session.request("MKCOL", f"{base}/Box/sub").status_code == 423
    assert session.request("DELETE", f"{base}/Box/a.txt").status_code == 423
    listing = multistatus(propfind(session, f"{base}/Box/", "1", ALLPROP))
    assert listing["/dav/Box/a.txt"][f"{DAV}lockdiscovery"][1] != ""
    assert listing["/dav/Box/"][f"{DAV}lockdiscovery"][1] != ""

    time.sleep(2.1)
    listing = multistatus(propfind(session, f"{base}/Box/", "1", ALLPROP))
    assert listing["/dav/Box/"][f"{DAV}lockdiscovery"] == ("200 OK", "")
    assert session.request("MKCOL", f"{base}/Box/sub").status_code == 201
    assert len(redis.hgetall(index_key)) == 1
    token = held.headers["Lock-Token"]
    assert (
        session.request("UNLOCK", f"{base}/Box/a.txt", headers={"Lock-Token": token}).status_code
        == 204
    )
    assert session.put(f"{base}/Box/a.txt", data=b"other\n").status_code == 204
    assert not redis.exists(index_key)
    assert commands(redis, "keys", "scan") == 0


def organization_of(app: Flask, email: str) -> int:
    """The organization of the member of this email."""
    from app.extensions import db
    from app.models import User

    with app.app_context():
        found = db.session.query(User).filter_by(email=email).one()
        return int(found.organization_id)
