"""The activity record: each action writes its event with who acted, from where and on what;
admins read the organization's, members a file's own; filters, cursors, CSV and retention."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import update

from app.extensions import db
from app.models import ActivityEvent, utcnow
from app.services import activity
from tests.support.client import Auth, bearer

CLIENT_IP = "127.0.0.1"


# ---- helpers -------------------------------------------------------------------------


def events(auth: Auth, **params: Any) -> list[dict[str, Any]]:
    """The organization's events as the admin reads them (one page of 200)."""
    response = auth.client.get("/api/org/activity", query_string={"limit": 200, **params})
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["events"])


def of_type(auth: Auth, event_type: str) -> list[dict[str, Any]]:
    """The organization's events of one type, newest first."""
    return events(auth, type=event_type)


def ready_file(auth: Auth, worker: Callable[[], None], name: str = "notes.txt") -> str:
    """A ready file's id."""
    response = auth.upload(name, b"the minutes of the meeting\n")
    assert response.status_code == 201, response.get_json()
    worker()
    return str(response.get_json()["file_id"])


def fetch(client: FlaskClient, url: str, method: str = "GET", **kwargs: Any) -> int:
    """Request a download as a client does: read it all and close it (a server closes every
    answer, which is when a download is recorded); its status."""
    with client.open(url, method=method, **kwargs) as response:
        response.get_data()
        return response.status_code


@pytest.fixture
def member(auth: Auth) -> Auth:
    """The admin's organization's member, logged in on their own client."""
    auth.register("admin@acme.test", "Acme")
    code = auth.invite()
    other = auth.another()
    assert other.register("member@acme.test", "Acme", invite_code=code).status_code == 201
    return other


# ---- what is recorded ----------------------------------------------------------------


def test_logins_failed_logins_and_logouts_are_recorded_with_the_address(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    visitor = auth.another()
    assert visitor.login("admin@acme.test", "not the password").status_code == 401
    assert visitor.login("admin@acme.test").status_code == 200
    assert visitor.logout().status_code == 200

    failed = of_type(auth, "auth.login_failed")
    assert len(failed) == 1
    assert failed[0]["actor"] == {
        "kind": "user",
        "id": failed[0]["actor"]["id"],
        "email": "admin@acme.test",
    }
    assert failed[0]["ip"] == CLIENT_IP
    assert failed[0]["target"]["kind"] == "user"
    assert len(of_type(auth, "auth.login")) == 1
    logout = of_type(auth, "auth.logout")
    assert len(logout) == 1 and logout[0]["actor"]["email"] == "admin@acme.test"
    # Newest first.
    types = [e["type"] for e in events(auth)]
    assert types.index("auth.logout") < types.index("auth.login") < types.index("auth.login_failed")


def test_a_login_to_an_unknown_email_records_nothing_anywhere(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    assert auth.another().login("nobody@acme.test", "whatever it is").status_code == 401
    assert of_type(auth, "auth.login_failed") == []


def test_folders_and_files_renamed_and_moved_are_recorded_with_their_new_names(
    auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register("admin@acme.test", "Acme")
    folder = auth.client.post("/api/folders", json={"name": "Reports"}, headers=auth.headers())
    folder_id = folder.get_json()["id"]
    file_id = ready_file(auth, worker)
    renamed = auth.client.patch(
        f"/api/files/{file_id}",
        json={"filename": "minutes.txt", "folder_id": folder_id},
        headers=auth.headers(),
    )
    assert renamed.status_code == 200
    auth.client.patch(f"/api/folders/{folder_id}", json={"name": "Archive"}, headers=auth.headers())

    created = of_type(auth, "folder.created")
    assert created[0]["target"] == {"kind": "folder", "id": folder_id, "name": "Reports"}
    assert of_type(auth, "folder.renamed")[0]["target"]["name"] == "Archive"
    assert of_type(auth, "file.renamed")[0]["target"] == {
        "kind": "file",
        "id": file_id,
        "name": "minutes.txt",
    }
    assert of_type(auth, "file.moved")[0]["target"]["id"] == file_id


def test_a_refused_change_records_nothing(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    assert (
        auth.client.post("/api/folders", json={"name": "A"}, headers=auth.headers()).status_code
        == 201
    )
    taken = auth.client.post("/api/folders", json={"name": "a"}, headers=auth.headers())
    assert taken.status_code == 409
    assert len(of_type(auth, "folder.created")) == 1


def test_downloads_name_the_session_user_the_token_or_the_share_link(
    auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register("admin@acme.test", "Acme")
    file_id = ready_file(auth, worker)
    token = auth.token("backup script")
    tokens = auth.client.get("/api/tokens").get_json()["tokens"]
    token_id = tokens[0]["id"]

    assert fetch(auth.client, f"/api/files/{file_id}/download") == 200
    url = f"/api/files/{file_id}/download"
    assert fetch(auth.another().client, url, headers=bearer(token)) == 200
    link = auth.client.post(f"/api/files/{file_id}/links", json={}, headers=auth.headers())
    link_body = link.get_json()
    assert fetch(auth.another().client, link_body["url"]) == 200
    # A HEAD, a 304 and a later range are not downloads.
    assert fetch(auth.client, url, "HEAD") == 200
    assert fetch(auth.client, url, headers={"Range": "bytes=5-9"}) == 206
    etag = '"{}"'.format(auth.client.get(f"/api/files/{file_id}").get_json()["sha256"])
    assert fetch(auth.client, url, headers={"If-None-Match": etag}) == 304

    downloads = of_type(auth, "file.downloaded")
    actors = [(d["actor"]["kind"], d["actor"]["id"]) for d in reversed(downloads)]
    admin_id = auth.client.get("/api/auth/me").get_json()["user_id"]
    assert actors == [("user", admin_id), ("token", token_id), ("link", link_body["id"])]
    assert downloads[1]["actor"]["email"] == "admin@acme.test"  # the token's owner
    assert downloads[0]["actor"]["email"] is None
    assert all(d["target"]["id"] == file_id and d["ip"] == CLIENT_IP for d in downloads)
    assert of_type(auth, "link.created")[0]["target"]["id"] == str(link_body["id"])


@pytest.mark.parametrize("app_overrides", [{"WEBHOOK_ALLOW_PRIVATE": True}])
def test_link_revocations_and_webhooks_are_recorded(auth: Auth, worker: Callable[[], None]) -> None:
    auth.register("admin@acme.test", "Acme")
    file_id = ready_file(auth, worker)
    link = auth.client.post(f"/api/files/{file_id}/links", json={}, headers=auth.headers())
    link_id = link.get_json()["id"]
    assert auth.client.delete(f"/api/links/{link_id}", headers=auth.headers()).status_code == 204
    revoked = of_type(auth, "link.revoked")
    assert revoked[0]["target"] == {"kind": "link", "id": str(link_id), "name": "notes.txt"}

    hook = auth.client.post(
        "/api/org/webhooks",
        json={"url": "http://127.0.0.1:9/coffer", "events": ["file.ready"]},
        headers=auth.headers(),
    )
    assert hook.status_code == 201, hook.get_json()
    hook_id = hook.get_json()["id"]
    deleted = auth.client.delete(f"/api/org/webhooks/{hook_id}", headers=auth.headers())
    assert deleted.status_code == 204
    assert of_type(auth, "webhook.created")[0]["target"]["name"] == "http://127.0.0.1:9/coffer"
    assert of_type(auth, "webhook.deleted")[0]["target"]["id"] == str(hook_id)


# ---- who reads what ------------------------------------------------------------------


def test_only_admins_read_the_organization_record_and_members_read_a_files_history(
    auth: Auth, member: Auth, worker: Callable[[], None]
) -> None:
    assert member.client.get("/api/org/activity").status_code == 403
    file_id = ready_file(member, worker)
    assert fetch(member.client, f"/api/files/{file_id}/download") == 200
    history = member.client.get(f"/api/files/{file_id}/activity")
    assert history.status_code == 200
    assert [e["type"] for e in history.get_json()["events"]] == [
        "file.downloaded",
        "file.uploaded",
    ]


def test_another_organization_sees_none_of_it(auth: Auth, worker: Callable[[], None]) -> None:
    auth.register("admin@acme.test", "Acme")
    file_id = ready_file(auth, worker)
    fetch(auth.client, f"/api/files/{file_id}/download")
    globex = auth.another()
    assert globex.register("admin@globex.test", "Globex").status_code == 201
    assert globex.client.get(f"/api/files/{file_id}/activity").status_code == 404
    # Its own admin's arrival only.
    assert [e["type"] for e in events(globex)] == ["member.joined"]
    assert events(globex, file_id=file_id) == []


# ---- filters, cursors, CSV -----------------------------------------------------------


def test_filters_by_type_person_and_file_and_cursors_page_through(
    auth: Auth, member: Auth, worker: Callable[[], None]
) -> None:
    mine = ready_file(auth, worker, "mine.txt")
    theirs = ready_file(member, worker, "theirs.txt")
    for _ in range(3):
        fetch(auth.client, f"/api/files/{mine}/download")
        fetch(member.client, f"/api/files/{theirs}/download")
    member_id = member.client.get("/api/auth/me").get_json()["user_id"]

    by_member = events(auth, actor_id=member_id, type="file.downloaded")
    assert len(by_member) == 3
    assert all(e["target"]["id"] == theirs for e in by_member)
    assert [e["type"] for e in events(auth, file_id=mine)] == ["file.downloaded"] * 3 + [
        "file.uploaded"
    ]

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "type": "file.downloaded"}
        if cursor:
            params["cursor"] = cursor
        page = auth.client.get("/api/org/activity", query_string=params).get_json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)

    first = auth.client.get(
        "/api/org/activity", query_string={"limit": 2, "type": "file.downloaded"}
    ).get_json()
    other = auth.client.get(
        "/api/org/activity", query_string={"cursor": first["next_cursor"], "type": "auth.login"}
    )
    assert other.status_code == 400 and other.get_json()["field"] == "cursor"


@pytest.mark.parametrize(
    "params",
    [{"type": "file.exploded"}, {"limit": 0}, {"limit": 201}, {"actor_id": "me"}, {"cursor": "x"}],
)
def test_bad_parameters_are_400_naming_the_parameter(auth: Auth, params: dict[str, Any]) -> None:
    auth.register("admin@acme.test", "Acme")
    response = auth.client.get("/api/org/activity", query_string=params)
    assert response.status_code == 400
    assert response.get_json()["field"] == next(iter(params))


def test_csv_export_holds_every_event_and_keeps_formulas_as_text(
    auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register("admin@acme.test", "Acme")
    file_id = ready_file(auth, worker, "=HYPERLINK(1).txt")
    for _ in range(3):
        fetch(auth.client, f"/api/files/{file_id}/download")
    response = auth.client.get("/api/org/activity?format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["type"] for r in rows].count("file.downloaded") == 3
    assert len(rows) == len(events(auth))
    assert {r["target_name"] for r in rows if r["type"] == "file.downloaded"} == {
        "'=HYPERLINK(1).txt"
    }


def test_a_failed_file_is_recorded_with_its_reason_in_the_api_the_csv_and_the_page(
    auth: Auth, worker: Callable[[], None]
) -> None:
    auth.register("admin@acme.test", "Acme")
    response = auth.upload("holiday.png", b"not a picture at all, just words\n")
    assert response.status_code == 201
    worker()
    file_id = response.get_json()["file_id"]
    reason = auth.client.get(f"/api/files/{file_id}").get_json()["error_message"]
    assert reason and "png" in reason.lower()

    failed = of_type(auth, "file.failed")
    assert len(failed) == 1
    assert failed[0]["actor"]["kind"] == "system"
    assert failed[0]["target"]["name"] == "holiday.png" and failed[0]["detail"] == reason
    history = auth.client.get(f"/api/files/{file_id}/activity").get_json()["events"]
    assert [e["detail"] for e in history if e["type"] == "file.failed"] == [reason]
    # Events that say nothing more carry no detail.
    assert {e["detail"] for e in of_type(auth, "file.uploaded")} == {None}

    rows = csv.DictReader(io.StringIO(auth.client.get("/api/org/activity?format=csv").text))
    assert [r["detail"] for r in rows if r["type"] == "file.failed"] == [reason]
    page = auth.client.get(f"/activity?file_id={file_id}").get_data(as_text=True)
    assert escape(reason) in page


# ---- retention -----------------------------------------------------------------------


@pytest.mark.parametrize("app_overrides", [{"ACTIVITY_RETENTION_DAYS": 30}])
def test_the_sweep_deletes_events_past_their_retention(app: Flask, auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    auth.another().login("admin@acme.test", "wrong password, twice")
    auth.another().login("admin@acme.test")
    with app.app_context():
        db.session.execute(
            update(ActivityEvent)
            .where(ActivityEvent.type == "auth.login_failed")
            .values(at=utcnow() - timedelta(days=31))
        )
        db.session.commit()
        assert activity.purge_expired() == 1
    assert [e["type"] for e in events(auth)] == ["auth.login", "member.joined"]


# ---- the Activity page ---------------------------------------------------------------


def test_the_activity_page_lists_and_filters_for_admins_only(
    auth: Auth, member: Auth, worker: Callable[[], None]
) -> None:
    file_id = ready_file(member, worker, "budget.ods")
    fetch(member.client, f"/api/files/{file_id}/download")
    page = auth.client.get("/activity")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "file.downloaded" in html and "budget.ods" in html and "member@acme.test" in html
    assert 'href="/activity"' in auth.client.get("/").get_data(as_text=True)

    member_id = member.client.get("/api/auth/me").get_json()["user_id"]
    only_logins = auth.client.get(f"/activity?type=auth.login&actor_id={member_id}")
    assert "budget.ods" not in only_logins.get_data(as_text=True)
    of_file = auth.client.get(f"/activity?file_id={file_id}").get_data(as_text=True)
    assert "budget.ods" in of_file and "auth.login" not in of_file.split("<tbody>")[1]
    # A filter edited by hand shows the whole record rather than an error.
    assert auth.client.get("/activity?type=nonsense").status_code == 200

    refused = member.client.get("/activity")
    assert refused.status_code == 403
    assert "Only an admin" in refused.get_data(as_text=True)
    assert 'href="/activity"' not in member.client.get("/").get_data(as_text=True)


def test_team_administration_is_recorded(auth: Auth) -> None:
    auth.register("admin@acme.test", "Acme")
    admin = auth.headers()
    invite = auth.client.post("/api/org/invites", json={"role": "member"}, headers=admin)
    code, invite_id = invite.get_json()["invite_code"], invite.get_json()["id"]
    spare = auth.client.post("/api/org/invites", json={}, headers=admin).get_json()["id"]
    assert auth.client.delete(f"/api/org/invites/{spare}", headers=admin).status_code == 204
    newcomer = auth.another()
    joined = newcomer.register("member@acme.test", "Acme", invite_code=code)
    member_id = joined.get_json()["user_id"]
    users = f"/api/org/users/{member_id}"
    assert auth.client.patch(users, json={"role": "admin"}, headers=admin).status_code == 200
    assert auth.client.patch(users, json={"role": "member"}, headers=admin).status_code == 200
    assert auth.client.post(f"{users}/deactivate", headers=admin).status_code == 200
    assert auth.client.post(f"{users}/activate", headers=admin).status_code == 200
    token = auth.client.post("/api/tokens", json={"name": "nightly"}, headers=admin).get_json()
    assert auth.client.delete(f"/api/tokens/{token['id']}", headers=admin).status_code == 204
    changed = auth.client.post(
        "/api/auth/password",
        json={"current_password": auth.password, "new_password": "a much longer passphrase"},
        headers=admin,
    )
    assert changed.status_code == 204

    recorded: dict[str, dict[str, Any]] = {}
    for event in reversed(events(auth)):  # the first of each type
        recorded.setdefault(event["type"], event)
    assert recorded["member.invited"]["target"] == {
        "kind": "invite",
        "id": str(invite_id),
        "name": "invite as member",
    }
    assert recorded["invite.revoked"]["target"]["id"] == str(spare)
    assert of_type(auth, "member.joined")[0]["actor"]["email"] == "member@acme.test"
    assert [e["target"]["name"] for e in of_type(auth, "member.role_changed")] == [
        "member@acme.test (member)",
        "member@acme.test (admin)",
    ]
    assert recorded["member.deactivated"]["target"]["id"] == str(member_id)
    assert recorded["member.activated"]["actor"]["email"] == "admin@acme.test"
    assert recorded["token.created"]["target"] == {
        "kind": "token",
        "id": str(token["id"]),
        "name": "nightly",
    }
    assert recorded["token.revoked"]["target"]["id"] == str(token["id"])
    assert recorded["auth.password_changed"]["actor"]["email"] == "admin@acme.test"


@pytest.mark.parametrize("app_overrides", [{"WEBHOOK_ALLOW_PRIVATE": True}])
def test_every_event_type_is_recorded_by_the_action_that_makes_it(
    auth: Auth, worker: Callable[[], None]
) -> None:
    """Each event of the contract's list (upload-only links' `request.created` aside, which
    arrive with those links), made by the API, is recorded with its actor and address."""
    auth.register("admin@acme.test", "Acme")
    admin = auth.headers()
    auth.another().login("admin@acme.test", "not the password")
    visitor = auth.another()
    visitor.login("admin@acme.test")
    visitor.logout()
    invite = auth.client.post("/api/org/invites", json={}, headers=admin).get_json()
    member = auth.another()
    member_id = member.register("m@acme.test", "Acme", invite_code=invite["invite_code"])
    users = f"/api/org/users/{member_id.get_json()['user_id']}"
    auth.client.patch(users, json={"role": "admin"}, headers=admin)
    auth.client.post(f"{users}/deactivate", headers=admin)
    auth.client.post(f"{users}/activate", headers=admin)
    token = auth.client.post("/api/tokens", json={"name": "t"}, headers=admin).get_json()
    auth.client.delete(f"/api/tokens/{token['id']}", headers=admin)
    hook = auth.client.post(
        "/api/org/webhooks",
        json={"url": "http://127.0.0.1:9/h", "events": ["file.ready"]},
        headers=admin,
    ).get_json()
    auth.client.delete(f"/api/org/webhooks/{hook['id']}", headers=admin)
    folder = auth.client.post("/api/folders", json={"name": "F"}, headers=admin).get_json()
    file_id = ready_file(auth, worker)
    fetch(auth.client, f"/api/files/{file_id}/download")
    auth.client.patch(
        f"/api/files/{file_id}",
        json={"filename": "n.txt", "folder_id": folder["id"]},
        headers=admin,
    )
    link = auth.client.post(f"/api/files/{file_id}/links", json={}, headers=admin).get_json()
    fetch(auth.another().client, link["url"])
    auth.client.delete(f"/api/links/{link['id']}", headers=admin)
    assert auth.client.delete(f"/api/files/{file_id}", headers=admin).status_code == 204
    assert auth.client.post(f"/api/trash/{file_id}/restore", headers=admin).status_code == 200
    auth.client.delete(f"/api/files/{file_id}", headers=admin)
    assert auth.client.delete(f"/api/trash/{file_id}", headers=admin).status_code == 204
    auth.client.post(
        "/api/auth/password",
        json={"current_password": auth.password, "new_password": "another long passphrase"},
        headers=admin,
    )

    recorded = events(auth)
    seen = {e["type"] for e in recorded}
    contract = {
        "auth.login",
        "auth.login_failed",
        "auth.logout",
        "auth.password_changed",
        "file.uploaded",
        "file.downloaded",
        "file.renamed",
        "file.moved",
        "file.trashed",
        "file.restored",
        "file.deleted",
        "folder.created",
        "link.created",
        "link.revoked",
        "token.created",
        "token.revoked",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "member.deactivated",
        "member.activated",
        "webhook.created",
        "webhook.deleted",
    }
    assert contract <= seen, contract - seen
    for event in recorded:
        assert event["ip"] == CLIENT_IP, event
        assert event["actor"]["kind"] in {"user", "token", "link"}, event
    file_events = {e["type"] for e in events(auth, file_id=file_id)}
    assert {"file.uploaded", "file.downloaded", "file.trashed", "file.deleted"} <= file_events
