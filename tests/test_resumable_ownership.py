"""Who may touch an unfinished resumable upload: its uploader alone sends bytes; the uploader
or an admin sees and cancels it; a colleague who is not an admin, like another organization,
finds nothing. The listing of unfinished uploads, and an expiry that only bytes move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import utcnow
from tests.support.client import Auth
from tests.support.storage import stored_bytes, stored_key
from tests.support.tus import TUS, bearer, create, patch, set_expiry


@dataclass
class Person:
    """A signed-in user: their own client, and the headers of a tus request by them."""

    email: str
    client: FlaskClient
    headers: dict[str, str]


@dataclass
class Team:
    """Acme's admin (by API token), Acme's member (by session cookie and CSRF token) and
    Globex's admin (by API token)."""

    admin: Person
    member: Person
    outsider: Person


@pytest.fixture
def team(app: Flask, auth: Auth) -> Team:
    """Two users of one organization and one of another, signed in for real."""
    assert auth.register(email="admin@acme.test", organization_name="Acme").status_code == 201
    admin = Person("admin@acme.test", auth.client, bearer(auth.token()))
    member_auth = auth.another()
    joined = member_auth.register(
        email="member@acme.test", organization_name="Acme", invite_code=auth.invite()
    )
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["role"] == "member"
    member = Person("member@acme.test", member_auth.client, {**TUS, **member_auth.headers()})
    other = auth.another()
    assert other.register(email="admin@globex.test", organization_name="Globex").status_code == 201
    outsider = Person("admin@globex.test", other.client, bearer(other.token()))
    return Team(admin, member, outsider)


def refused(response: Any, status: int, code: str) -> None:
    """An error answer of a tus request, with its status and code (a HEAD has no body)."""
    assert response.status_code == status, response.get_data(as_text=True)
    if response.request.method != "HEAD":
        assert response.get_json()["code"] == code
    assert response.headers["Tus-Resumable"] == "1.0.0"


def offset(person: Person, url: str) -> str:
    """The upload's offset as HEAD tells the person."""
    head = person.client.head(url, headers=person.headers)
    assert head.status_code == 200
    return head.headers["Upload-Offset"]


def reserved(person: Person) -> int:
    """What unfinished uploads hold of the person's organization's quota."""
    body = person.client.get("/api/org", headers=person.headers).get_json()
    return int(body["reserved_bytes"])


def listing(person: Person) -> Any:
    """GET /api/uploads as the person (a JSON request: no Tus-Resumable)."""
    headers = {k: v for k, v in person.headers.items() if k != "Tus-Resumable"}
    return person.client.get("/api/uploads", headers=headers)


def test_a_member_can_neither_write_to_nor_cancel_an_admins_upload(app: Flask, team: Team) -> None:
    """A member's PATCH, DELETE and HEAD on the admin's upload answer 404, as another
    organization's do; its bytes, offset and holding stay, and the file the admin finishes
    holds the admin's bytes only."""
    admin, member, outsider = team.admin, team.member, team.outsider
    created = create(admin.client, admin.headers, 10, name="plan.txt")
    assert created.status_code == 201
    url = created.headers["Location"]
    assert patch(admin.client, admin.headers, url, 0, b"ADMIN").status_code == 204

    for stranger in (member, outsider):
        refused(patch(stranger.client, stranger.headers, url, 5, b"EVIL!"), 404, "not_found")
        refused(patch(stranger.client, stranger.headers, url, 0, b"EVIL!"), 404, "not_found")
        refused(stranger.client.delete(url, headers=stranger.headers), 404, "not_found")
        refused(stranger.client.head(url, headers=stranger.headers), 404, "not_found")
    assert offset(admin, url) == "5"
    assert reserved(admin) == 10

    assert patch(admin.client, admin.headers, url, 5, b"-OWN!").status_code == 204
    file_id = url.rsplit("/", 1)[-1]
    details = admin.client.get(f"/api/files/{file_id}", headers=admin.headers).get_json()
    assert (details["filename"], details["size"]) == ("plan.txt", 10)
    assert details["uploaded_by_email"] == "admin@acme.test"
    assert stored_bytes(app, stored_key(app, file_id)) == b"ADMIN-OWN!"


def test_an_admin_may_see_and_cancel_a_members_upload_but_not_write_to_it(team: Team) -> None:
    """The admin's HEAD answers, their PATCH is 403 forbidden and changes nothing, their
    DELETE removes the upload and frees its holding; another organization's admin gets 404;
    the member cancels their own."""
    admin, member, outsider = team.admin, team.member, team.outsider
    url = create(member.client, member.headers, 10).headers["Location"]
    assert patch(member.client, member.headers, url, 0, b"abc").status_code == 204

    assert offset(admin, url) == "3"
    refused(patch(admin.client, admin.headers, url, 3, b"defg"), 403, "forbidden")
    assert offset(member, url) == "3"
    refused(outsider.client.delete(url, headers=outsider.headers), 404, "not_found")
    assert offset(member, url) == "3"
    assert reserved(admin) == 10

    deleted = admin.client.delete(url, headers=admin.headers)
    assert deleted.status_code == 204, deleted.get_data(as_text=True)
    refused(member.client.head(url, headers=member.headers), 404, "not_found")
    refused(patch(member.client, member.headers, url, 3, b"defg"), 404, "not_found")
    assert reserved(admin) == 0

    # Their own upload, the member cancels without an admin.
    again = create(member.client, member.headers, 10).headers["Location"]
    assert member.client.delete(again, headers=member.headers).status_code == 204
    refused(member.client.head(again, headers=member.headers), 404, "not_found")


def test_the_listing_shows_an_admin_every_upload_and_a_member_their_own(team: Team) -> None:
    """GET /api/uploads: the admin sees the organization's unfinished uploads newest first,
    with uploader, offset, length and times; a member only theirs; another organization
    only its own; a finished upload is not listed; no credentials, 401."""
    admin, member, outsider = team.admin, team.member, team.outsider
    before = datetime.now(UTC) - timedelta(seconds=5)
    own = create(admin.client, admin.headers, 10, name="admin.bin").headers["Location"]
    assert patch(admin.client, admin.headers, own, 0, b"1234").status_code == 204
    theirs = create(member.client, member.headers, 20, name="member.bin").headers["Location"]
    finished = create(member.client, member.headers, 3, name="done.bin").headers["Location"]
    assert patch(member.client, member.headers, finished, 0, b"end").status_code == 204
    elsewhere = create(outsider.client, outsider.headers, 7, name="globex.bin").headers["Location"]

    answer = listing(admin)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    listed = answer.get_json()["uploads"]
    assert [(u["id"], u["filename"], u["uploader"], u["offset"], u["length"]) for u in listed] == [
        (theirs.rsplit("/", 1)[-1], "member.bin", "member@acme.test", 0, 20),
        (own.rsplit("/", 1)[-1], "admin.bin", "admin@acme.test", 4, 10),
    ]
    for item in listed:
        created_at = datetime.fromisoformat(item["created_at"])
        expires_at = datetime.fromisoformat(item["expires_at"])
        assert before < created_at < expires_at
    head = admin.client.head(own, headers=admin.headers)
    expires_header = parsedate_to_datetime(head.headers["Upload-Expires"])
    own_expiry = datetime.fromisoformat(listed[1]["expires_at"])
    assert abs(own_expiry - expires_header) < timedelta(seconds=1)

    mine = listing(member).get_json()["uploads"]
    assert [(u["id"], u["uploader"]) for u in mine] == [
        (theirs.rsplit("/", 1)[-1], "member@acme.test")
    ]
    other = listing(outsider).get_json()["uploads"]
    assert [(u["id"], u["filename"]) for u in other] == [
        (elsewhere.rsplit("/", 1)[-1], "globex.bin")
    ]
    anonymous = admin.client.application.test_client().get("/api/uploads")
    assert anonymous.status_code == 401
    assert anonymous.get_json()["code"] == "unauthorized"

    # The admin cancels a member's upload from the listing; the others end as usual.
    for url, person in ((theirs, admin), (own, admin), (elsewhere, outsider)):
        assert person.client.delete(url, headers=person.headers).status_code == 204
    assert listing(admin).get_json()["uploads"] == []


def test_a_patch_of_no_bytes_leaves_the_expiry_where_it_was(app: Flask, team: Team) -> None:
    """With an hour left, an empty PATCH answers 204 and the same Upload-Expires, which HEAD
    and the listing keep; a PATCH with bytes moves it a whole window on."""
    admin = team.admin
    url = create(admin.client, admin.headers, 10).headers["Location"]
    assert patch(admin.client, admin.headers, url, 0, b"abc").status_code == 204
    set_expiry(app, url, utcnow() + timedelta(hours=1))
    soon = admin.client.head(url, headers=admin.headers).headers["Upload-Expires"]
    assert parsedate_to_datetime(soon) == pytest.approx(
        datetime.now(UTC) + timedelta(hours=1), abs=timedelta(minutes=1)
    )

    for _ in range(3):
        empty = patch(admin.client, admin.headers, url, 3, b"")
        assert empty.status_code == 204, empty.get_data(as_text=True)
        assert empty.headers["Upload-Offset"] == "3"
        assert empty.headers["Upload-Expires"] == soon
    assert admin.client.head(url, headers=admin.headers).headers["Upload-Expires"] == soon
    (listed,) = listing(admin).get_json()["uploads"]
    assert datetime.fromisoformat(listed["expires_at"]) == pytest.approx(
        parsedate_to_datetime(soon), abs=timedelta(seconds=1)
    )

    window = timedelta(hours=app.config["RESUMABLE_EXPIRY_HOURS"])
    more = patch(admin.client, admin.headers, url, 3, b"de")
    assert more.status_code == 204
    assert parsedate_to_datetime(more.headers["Upload-Expires"]) == pytest.approx(
        datetime.now(UTC) + window, abs=timedelta(minutes=1)
    )
    assert admin.client.delete(url, headers=admin.headers).status_code == 204
