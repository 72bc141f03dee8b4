"""WebDAV request by request, as rclone and file managers use it: the bytes a GET answers
(whole and ranged), the entity tag a PUT answers, locks honoured by the PUT that follows
another client's LOCK, a PUT sent in chunks (no length) stored exactly or, over the size
limit, not at all, and a revoked token refused on its very next request."""

from __future__ import annotations

import re

import pytest
import requests
from flask import Flask

from tests.support.client import bearer
from tests.support.dav import Member
from tests.support.live import LiveServer
from tests.support.pipeline import text_bytes
from tests.support.storage import pending_uploads, stored_bytes, stored_objects

LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
    b"<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)


def getetag(session: requests.Session, url: str) -> str:
    """The `getetag` a PROPFIND of Depth 0 answers for `url`."""
    answer = session.request("PROPFIND", url, headers={"Depth": "0"})
    assert answer.status_code == 207, answer.text
    found = re.search(r"<(?:\w+:)?getetag>(.*?)</(?:\w+:)?getetag>", answer.text)
    assert found is not None, answer.text
    return found.group(1)


def test_a_get_answers_the_exact_bytes_with_their_length_and_ranges(
    server: LiveServer, acme: Member
) -> None:
    """A GET of a file in a folder answers its bytes and Content-Length; a ranged GET the
    range (206, Content-Range); a range past the end 416."""
    base = f"{server.url}/dav"
    session = acme.session()
    data = text_bytes(300_000, 7)
    assert session.request("MKCOL", f"{base}/Reports").status_code == 201
    assert session.put(f"{base}/Reports/r.txt", data=data).status_code == 201
    whole = session.get(f"{base}/Reports/r.txt")
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["Content-Length"] == str(len(data))
    part = session.get(f"{base}/Reports/r.txt", headers={"Range": "bytes=1000-65535"})
    assert part.status_code == 206
    assert part.content == data[1000:65536]
    assert part.headers["Content-Range"] == f"bytes 1000-65535/{len(data)}"
    tail = session.get(f"{base}/Reports/r.txt", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]
    past = session.get(f"{base}/Reports/r.txt", headers={"Range": f"bytes={len(data) + 5}-"})
    assert past.status_code == 416


def test_a_put_answers_the_entity_tag_the_file_then_has(server: LiveServer, acme: Member) -> None:
    """The ETag of a PUT's answer (a new file, then a new version) is the `getetag` a
    PROPFIND then gives, and If-Match with it lets the next PUT through."""
    url = f"{server.url}/dav/plan.txt"
    session = acme.session()
    created = session.put(url, data=b"first\n")
    assert created.status_code == 201
    assert created.headers["ETag"] == f'"{getetag(session, url)}"'
    replaced = session.put(url, data=b"second\n", headers={"If-Match": created.headers["ETag"]})
    assert replaced.status_code == 204
    assert replaced.headers["ETag"] != created.headers["ETag"]
    assert replaced.headers["ETag"] == f'"{getetag(session, url)}"'
    stale = session.put(url, data=b"third\n", headers={"If-Match": created.headers["ETag"]})
    assert stale.status_code == 412
    assert session.get(url).content == b"second\n"


def test_a_lock_taken_by_another_client_holds_against_the_next_put(
    server: LiveServer, acme: Member
) -> None:
    """A PUT without the lock token after another client's LOCK is refused (423), with it
    accepted; after UNLOCK a PUT needs none."""
    url = f"{server.url}/dav/locked.txt"
    owner, other = acme.session(), acme.session()
    assert owner.put(url, data=b"v1\n").status_code == 201
    locked = owner.request("LOCK", url, data=LOCK_BODY, headers={"Timeout": "Second-60"})
    assert locked.status_code == 200
    token = locked.headers["Lock-Token"]
    assert other.put(url, data=b"v2\n").status_code == 423
    assert other.put(url, data=b"v2\n", headers={"If": f"({token})"}).status_code == 204
    unlocked = owner.request("UNLOCK", url, headers={"Lock-Token": token})
    assert unlocked.status_code == 204
    assert other.put(url, data=b"v3\n").status_code == 204
    assert other.get(url).content == b"v3\n"


def test_a_revoked_token_stops_working_at_once(
    app: Flask, server: LiveServer, acme: Member
) -> None:
    """On a connection kept open (as rclone keeps them), the requests right after the token
    is revoked are refused with 401."""
    url = f"{server.url}/dav/"
    session = acme.session()
    assert session.request("PROPFIND", url, headers={"Depth": "0"}).status_code == 207
    with app.test_client() as http:
        tokens = http.get("/api/tokens", headers=bearer(acme.write)).get_json()["tokens"]
        token_id = next(token["id"] for token in tokens if token["name"] == "dav")
        assert http.delete(f"/api/tokens/{token_id}", headers=bearer(acme.write)).status_code in (
            200,
            204,
        )
    refused = session.request("PROPFIND", url, headers={"Depth": "0"})
    assert refused.status_code == 401
    assert session.put(f"{url}after.txt", data=b"x\n").status_code == 401


def test_a_put_sent_in_chunks_stores_exactly_its_bytes(
    app: Flask, server: LiveServer, acme: Member
) -> None:
    """A PUT without a length (Transfer-Encoding: chunked, as file managers send one), in
    pieces of uneven sizes across the server's read size, stores the bytes exactly: read
    back whole, and one object of that size in storage."""
    base = f"{server.url}/dav"
    session = acme.session()
    data = text_bytes(3 * 1024 * 1024 + 12_345, 11)
    cuts = [0, 1, 65_536, 65_537, 1_000_000, 2_500_001, len(data)]
    pieces = [data[start:end] for start, end in zip(cuts, cuts[1:], strict=False)]
    put = session.put(f"{base}/chunked.txt", data=iter(pieces))
    assert put.request.headers.get("Transfer-Encoding") == "chunked"
    assert put.status_code == 201, put.text
    got = session.get(f"{base}/chunked.txt")
    assert got.status_code == 200 and got.content == data
    (key,) = [key for key in stored_objects(app) if key.endswith("/chunked.txt")]
    assert stored_objects(app)[key] == len(data)
    assert stored_bytes(app, key) == data


@pytest.mark.parametrize("app_overrides", [{"MAX_FILE_SIZE_MB": 1}])
def test_a_chunked_put_over_the_size_limit_leaves_nothing(
    app: Flask, server: LiveServer, acme: Member
) -> None:
    """A PUT in chunks past MAX_FILE_SIZE is refused (413) and leaves no file, no stored
    object and no upload in flight behind it."""
    base = f"{server.url}/dav"
    session = acme.session()
    before = stored_objects(app)
    too_big = text_bytes(1024 * 1024 + 1, 12)
    refused = session.put(f"{base}/big.txt", data=iter([too_big[:700_000], too_big[700_000:]]))
    assert refused.status_code == 413
    assert session.get(f"{base}/big.txt").status_code == 404
    assert stored_objects(app) == before
    assert pending_uploads(app) == []
